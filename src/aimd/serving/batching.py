"""Dynamic batching: requests to one model with the same input shape share one network call.

A :class:`DynamicBatcher` owns one worker thread per model. Callers (request threads) submit a
preprocessed batch ``(n, c, *spatial)``; the worker takes the oldest waiting item, then everything of
the same shape already queued, up to ``max_batch`` images, runs the network once on the stacked
array and hands every caller its rows. It waits for more company only while a request that
announced itself (:meth:`DynamicBatcher.expect`, taken when a request starts decoding its upload)
has not reached the queue yet, and never longer than ``max_wait_ms`` after the first item: with
nobody on the way, waiting would only add latency, and requests arriving while a batch runs are
gathered into the next one anyway. The queue is
bounded: a full queue raises :class:`~aimd.serving.errors.BusyError` at once (HTTP 503 with
Retry-After), a caller waiting longer than its timeout gets a BusyError, and a caller whose client
disconnected sets its cancel event, so the worker drops its queued work instead of running it.

:class:`BatchedPredictor` plugs a batcher under any adapter: it *is* a predictor with the same
specs whose network call goes through the batcher, so sliding-window windows and single 2-D images
are batched alike.

Example
-------
>>> import numpy as np, torch
>>> from aimd.models.adapters.torch_module import TorchModulePredictor
>>> from aimd.models.specs import InputSpec, OutputSpec
>>> base = TorchModulePredictor(torch.nn.Conv2d(1, 1, 1), InputSpec(modality="CT", patch_size=(8, 8)),
...                             OutputSpec(task="segmentation", labels={1: "x"}, activation="sigmoid"))
>>> batcher = DynamicBatcher(base, max_batch=4, max_wait_ms=5)
>>> BatchedPredictor(base, batcher).predict(np.zeros((1, 1, 8, 8), np.float32)).shape
(1, 1, 8, 8)
>>> batcher.close()
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.models.predictor import BasePredictor
from aimd.serving.errors import BusyError, CancelledError

_POLL = 0.002  # seconds between checks whether an announced request gave up before submitting


class Ticket:
    """A request announced to a :class:`DynamicBatcher`; :meth:`release` is idempotent."""

    def __init__(self, batcher: DynamicBatcher) -> None:
        self._batcher: DynamicBatcher | None = batcher

    def release(self) -> None:
        """The request makes no more network calls."""
        batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher._release()

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass
class _Item:
    batch: NDArray[np.float32]
    future: Future[NDArray[np.float32]]
    cancel: threading.Event
    queued: float = field(default_factory=time.perf_counter)


class DynamicBatcher:
    """Collects same-shape requests for one predictor into batches of up to ``max_batch`` images.

    Parameters
    ----------
    predictor:
        The adapter whose ``_logits`` runs each batch.
    max_batch:
        Most images per network call (1 disables batching).
    max_wait_ms:
        Longest time the first request of a batch waits for announced requests still on their way.
    queue_size:
        Most requests waiting; more are refused with :class:`BusyError`.
    on_batch:
        Called with the size of every batch run (metrics).
    runner:
        Runs a batch elsewhere and returns a future of its logits (the inference worker processes);
        up to ``concurrency`` batches are then in flight while the next one is gathered.
    """

    def __init__(
        self,
        predictor: BasePredictor,
        *,
        max_batch: int = 8,
        max_wait_ms: float = 10.0,
        queue_size: int = 64,
        on_batch: Callable[[int], Any] | None = None,
        runner: Callable[[NDArray[np.float32]], Future[NDArray[np.float32]]] | None = None,
        concurrency: int = 1,
    ) -> None:
        self.predictor = predictor
        self.max_batch = max(1, int(max_batch))
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000.0
        self._queue: queue.Queue[_Item | None] = queue.Queue(maxsize=max(1, int(queue_size)))
        self._held: list[_Item] = []
        self._on_batch = on_batch
        self._runner = runner
        self._slots = threading.Semaphore(max(1, int(concurrency)))
        self._closed = False
        self._count_lock = threading.Lock()
        self._announced = 0  # requests between expect() and their last network call
        self._inside = 0  # announced callers blocked in submit (queued, gathered or running)
        self._thread = threading.Thread(target=self._run, name="aimd-batcher", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Requests waiting now."""
        return self._queue.qsize() + len(self._held)

    def expect(self) -> Ticket:
        """Announce a request that will submit soon; release the ticket after its last network call."""
        with self._count_lock:
            self._announced += 1
        return Ticket(self)

    def _release(self) -> None:
        with self._count_lock:
            self._announced -= 1

    @property
    def on_the_way(self) -> int:
        """Announced requests that have not submitted yet (worth waiting for)."""
        with self._count_lock:
            return self._announced - self._inside

    def submit(
        self,
        batch: NDArray[np.float32],
        *,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        ticket: Ticket | None = None,
    ) -> NDArray[np.float32]:
        """Logits for ``batch``, computed together with other waiting requests of the same shape.

        ``ticket`` is the caller's announcement (:meth:`expect`), if it made one.
        """
        if self._closed:
            raise BusyError("the model is being unloaded", hint="retry against another version")
        item = _Item(np.ascontiguousarray(batch, dtype=np.float32), Future(), cancel or threading.Event())
        if ticket is None:
            return self._wait(item, timeout)
        with self._count_lock:
            self._inside += 1
        try:
            return self._wait(item, timeout)
        finally:
            with self._count_lock:
                self._inside -= 1

    def _wait(self, item: _Item, timeout: float | None) -> NDArray[np.float32]:
        try:
            self._queue.put_nowait(item)
        except queue.Full as err:
            raise BusyError(
                f"the model's queue is full ({self._queue.maxsize} requests waiting)",
                retry_after=max(1.0, self.max_wait * 4),
                where="model",
                hint="retry after the Retry-After seconds",
            ) from err
        deadline = None if timeout is None else time.perf_counter() + timeout
        while True:
            remaining = 0.05 if deadline is None else min(0.05, deadline - time.perf_counter())
            if remaining <= 0:
                item.cancel.set()
                raise BusyError(
                    f"no result within the request timeout of {timeout:g} s",
                    where="model",
                    retry_after=1.0,
                    hint="retry later or raise --timeout",
                )
            try:
                return item.future.result(timeout=remaining)
            except TimeoutError:
                if item.cancel.is_set():
                    raise CancelledError("the request was cancelled", where="request") from None

    def _take(self, block_until: float | None) -> _Item | None:
        if self._held:
            return self._held.pop(0)
        try:
            if block_until is None:
                return self._queue.get()
            wait = block_until - time.perf_counter()
            return self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
        except queue.Empty:
            return None

    def _run(self) -> None:
        while True:
            first = self._take(None)
            if first is None:
                if self._closed:
                    return
                continue
            if first.cancel.is_set():
                first.future.set_exception(CancelledError("cancelled before it ran", where="request"))
                continue
            group, rows = [first], first.batch.shape[0]
            shape = first.batch.shape[1:]
            until = time.perf_counter() + self.max_wait
            others: list[_Item] = []
            while rows < self.max_batch:
                nxt = self._take(self._wait_until(until))
                if nxt is None:
                    if self.on_the_way > 0 and time.perf_counter() < until:
                        continue  # an announced request is still decoding: worth its wait
                    break
                if nxt.cancel.is_set():
                    nxt.future.set_exception(CancelledError("cancelled before it ran", where="request"))
                elif nxt.batch.shape[1:] == shape and rows + nxt.batch.shape[0] <= self.max_batch:
                    group.append(nxt)
                    rows += nxt.batch.shape[0]
                else:
                    others.append(nxt)
            self._held = others + self._held
            self._execute(group, rows)

    def _wait_until(self, until: float) -> float:
        """How long the next take may block: not at all when nobody is on the way, else briefly."""
        now = time.perf_counter()
        if self.on_the_way <= 0:
            return now
        return min(until, now + _POLL)

    def _execute(self, group: list[_Item], rows: int) -> None:
        try:
            stacked = group[0].batch if len(group) == 1 else np.concatenate([g.batch for g in group], axis=0)
            if self._runner is not None:
                self._slots.acquire()  # a free worker; meanwhile the queue fills the next batch
                try:
                    future = self._runner(stacked)
                except BaseException:
                    self._slots.release()
                    raise
                future.add_done_callback(lambda f: self._finished(group, rows, f))
                return
            out = self.predictor._logits(stacked)
        except Exception as err:  # every caller gets the error of its batch
            for g in group:
                g.future.set_exception(err)
            return
        self._deliver(group, rows, out)

    def _finished(self, group: list[_Item], rows: int, future: Future[NDArray[np.float32]]) -> None:
        self._slots.release()
        err = CancelledError("the service is stopping", where="request") if future.cancelled() else future.exception()
        if err is not None:
            for g in group:
                g.future.set_exception(err)
            return
        self._deliver(group, rows, future.result())

    def _deliver(self, group: list[_Item], rows: int, out: NDArray[np.float32]) -> None:
        if self._on_batch is not None:
            self._on_batch(rows)
        start = 0
        for g in group:
            n = g.batch.shape[0]
            g.future.set_result(out[start : start + n])
            start += n

    def close(self) -> None:
        """Stop the worker after the queued work."""
        self._closed = True
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)


class BatchedPredictor(BasePredictor):
    """``predictor`` with its network calls routed through ``batcher`` (one per request, with its ticket)."""

    def __init__(
        self,
        predictor: BasePredictor,
        batcher: DynamicBatcher,
        *,
        timeout: float | None = None,
        cancel: threading.Event | None = None,
        ticket: Ticket | None = None,
    ) -> None:
        super().__init__(predictor.input_spec, predictor.output_spec, predictor.metadata)
        self.ticket = ticket
        self.base = predictor
        self.batcher = batcher
        self.timeout = timeout
        self.cancel = cancel or threading.Event()
        self.max_batch = max(predictor.max_batch, batcher.max_batch)

    def _logits(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self.batcher.submit(batch, timeout=self.timeout, cancel=self.cancel, ticket=self.ticket)


__all__ = ["BatchedPredictor", "DynamicBatcher", "Ticket"]
