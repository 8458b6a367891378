"""Dynamic batching: when a batch waits for company, and batched results equal unbatched ones."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import torch

from aimd.imaging.volume import Volume
from aimd.models.adapters.torch_module import TorchModulePredictor
from aimd.serving.batching import DynamicBatcher, Ticket
from aimd.serving.inputs import InputImage
from aimd.serving.pipeline import mask_of
from aimd.serving.registry import ModelRegistry
from aimd.serving.service import InferenceService
from aimd.serving.settings import ServeSettings
from serving_support import CT_SPEC, SEG_SPEC, blob_net, two_blob_ct


class _Counting(TorchModulePredictor):
    """Records the batch size of every network call."""

    def __init__(self) -> None:
        super().__init__(blob_net(), CT_SPEC, SEG_SPEC)
        self.calls: list[int] = []

    def _logits(self, batch):  # type: ignore[no-untyped-def]
        self.calls.append(batch.shape[0])
        return super()._logits(batch)


X = np.zeros((1, 1, 32, 32), np.float32)


def _submit_later(batcher: DynamicBatcher, delay: float, ticket: Ticket | None = None) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        batcher.submit(X, ticket=ticket)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_batch_waits_for_an_announced_request_and_not_for_anyone_else():
    base = _Counting()
    batcher = DynamicBatcher(base, max_batch=8, max_wait_ms=5000)
    late = batcher.expect()  # a request still decoding its upload
    later = _submit_later(batcher, 0.3, late)
    batcher.submit(X)  # waits for the announced one, then both run in one call
    later.join()
    late.release()
    assert base.calls == [2]
    assert batcher.on_the_way == 0

    second = _submit_later(batcher, 0.3)  # nobody announced: the first runs alone at once
    batcher.submit(X)
    second.join()
    assert base.calls == [2, 1, 1]
    batcher.close()


def test_an_announced_request_that_gives_up_stops_the_wait():
    base = _Counting()
    batcher = DynamicBatcher(base, max_batch=8, max_wait_ms=60_000)
    ticket = batcher.expect()
    threading.Timer(0.2, ticket.release).start()  # its upload turned out to be bad input
    done = threading.Event()
    worker = threading.Thread(target=lambda: (batcher.submit(X), done.set()))
    worker.start()
    assert done.wait(30), "the batch kept waiting for a request that left"
    worker.join()
    assert base.calls == [1]
    ticket.release()  # idempotent
    assert batcher.on_the_way == 0
    batcher.close()


def _net() -> torch.nn.Module:
    net = blob_net()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
    return net


def test_batched_and_unbatched_services_give_identical_results(tmp_path: Path):
    users = 6
    vol, _, _ = two_blob_ct()
    rng = np.random.default_rng(1)
    images = [
        InputImage(
            Volume(
                (vol.array + rng.normal(0, 20, vol.shape)).astype(np.float32),
                vol.spacing,
                vol.origin,
                vol.direction,
                modality="CT",
            ),
            "nifti",
            f"{k:064x}",
        )
        for k in range(users)
    ]
    weights = tmp_path / "w.pt"
    net = _net()
    torch.save(net.state_dict(), weights)
    docs: dict[int, list[dict]] = {}
    masks: dict[int, list[np.ndarray]] = {}
    for max_batch in (1, 16):
        base = TorchModulePredictor(net, CT_SPEC, SEG_SPEC)
        registry = ModelRegistry()
        model = registry.add("blob", base, weights, "1.0")
        settings = ServeSettings(
            data_dir=tmp_path / f"data{max_batch}", max_batch=max_batch, max_wait_ms=50, explain=False
        )
        svc = InferenceService(settings, registry)
        batcher = svc.batcher(model)
        sizes: list[int] = []
        batcher._on_batch = sizes.append
        tickets = [batcher.expect() for _ in images]  # all arrive together, as 16 Locust clients do
        out: dict[int, dict] = {}

        def call(k: int, svc: InferenceService = svc, model=model, tickets=tickets, out=out) -> None:
            out[k] = svc.infer(model, images[k], actor=None, source={"upload": [f"{k}.nii"]}, ticket=tickets[k])

        threads = [threading.Thread(target=call, args=(k,)) for k in range(users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        docs[max_batch] = [out[k] for k in range(users)]
        masks[max_batch] = [mask_of(svc.results_dir, out[k]) for k in range(users)]
        svc.close()
        # one request sends its 16 slices as two calls of 8 windows (predict_volume's sw_batch_size)
        if max_batch == 1:
            assert max(sizes) <= 8
        else:
            assert max(sizes) > 8  # the requests really shared network calls
    for k in range(users):
        assert docs[1][k]["findings"] == docs[16][k]["findings"]
        assert docs[1][k]["findings"], "the inputs hold findings to compare"
        np.testing.assert_array_equal(masks[1][k], masks[16][k])
