"""Inference worker processes: ``aimd serve --workers N``.

The service stays one process — one HTTP server, one job runner and recovery, one DICOM storage
SCP, one writer of the hash-chained audit log, one batching queue per model — and its network calls
run in ``N`` worker processes, each of which loads every model itself at start (the same file or
shipped device, checked against the SHA-256 the service recorded). The batcher of a model keeps up to
``N`` batches in flight, one per worker, and while they run it gathers the next batch, so concurrent
requests are both batched and spread over the cores.

Why processes for the network and not ``N`` uvicorn workers: ``N`` copies of the whole app would each
run job recovery (and fail a sibling's running job), each try to bind the DICOM port, interleave
appends to one audit chain, and split the batching queue ``N`` ways.

Models opened from an object rather than a path (tests, admin loads after start) run in the service
process itself.
"""

from __future__ import annotations

import os
import queue
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.core.errors import IntegrityError
from aimd.serving.registry import LoadedModel

_MODELS: dict[str, Any] = {}
_HASHES: dict[str, str] = {}


def _init(specs: list[tuple[str, str, str]], threads: int, report: Any) -> None:
    """Worker start: load every model ``(key, source, runtime)``; report ``(pid, hashes or error)``."""
    import torch

    from aimd.models.adapters import load_predictor
    from aimd.serving.registry import model_hash, shipped_weights

    try:
        torch.set_num_threads(max(1, threads))
        for key, source, runtime in specs:
            predictor = load_predictor(source, threads=threads, runtime=runtime)
            _MODELS[key] = predictor
            _HASHES[key] = model_hash(shipped_weights(source, predictor) or Path(source))
    except Exception as err:
        report.put((os.getpid(), f"{type(err).__name__}: {err}"))
        raise
    report.put((os.getpid(), dict(_HASHES)))


def _logits(key: str, batch: NDArray[np.float32]) -> NDArray[np.float32]:
    out: NDArray[np.float32] = _MODELS[key]._logits(batch)
    return out


def _pid() -> int:
    return os.getpid()


class InferencePool:
    """``workers`` processes holding the models of ``models`` that were loaded from a path."""

    def __init__(
        self, models: list[LoadedModel], workers: int, *, threads: int = 1, start_timeout: float = 600.0
    ) -> None:
        specs = [(m.key, str(m.extra["source"]), str(m.extra["runtime"])) for m in models if "source" in m.extra]
        self.workers = workers
        self.keys = {key for key, _, _ in specs}
        ctx = get_context("spawn")
        report = ctx.Queue()
        self._executor = ProcessPoolExecutor(
            max_workers=workers, mp_context=ctx, initializer=_init, initargs=(specs, threads, report)
        )
        for _ in range(workers):  # no worker is idle yet, so each task starts one more process
            self._executor.submit(_pid)
        expected = {m.key: m.sha256 for m in models if m.key in self.keys}
        self.pids: list[int] = []
        try:
            for _ in range(workers):
                pid, hashes = report.get(timeout=start_timeout)
                if hashes != expected:
                    raise IntegrityError(
                        f"inference worker {pid} did not load the service's models: {hashes}",
                        where="--workers",
                        hint="check that every --model path is readable and unchanged, or run with --workers 1",
                    )
                self.pids.append(pid)
        except queue.Empty:
            self.close()
            raise IntegrityError(
                f"the inference workers did not start within {start_timeout:g} s",
                where="--workers",
                hint="use fewer workers on this machine",
            ) from None
        except IntegrityError:
            self.close()
            raise
        self.pids.sort()

    def has(self, key: str) -> bool:
        """True when the workers hold model ``key`` (``name@version``)."""
        return key in self.keys

    def submit(self, key: str, batch: NDArray[np.float32]) -> Future[NDArray[np.float32]]:
        """Run one batch of model ``key`` in a worker."""
        return self._executor.submit(_logits, key, batch)

    def describe(self) -> dict[str, Any]:
        """Workers, their process ids and the models they hold."""
        return {"workers": self.workers, "pids": self.pids, "models": sorted(self.keys)}

    def close(self) -> None:
        """Stop the workers."""
        self._executor.shutdown(wait=False, cancel_futures=True)


__all__ = ["InferencePool"]
