"""The site guard (audit hook on open) and the clients' local training, without a federation."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from aimd.models.data import ArraySet
from aimd.models.federated.guard import SiteDataAccessError, SiteFileGuard
from aimd.models.federated.site import LocalPlan, dp_local_train, load_site, local_train
from aimd.models.targets import get_target
from aimd.models.zoo import build_network
from aimd.phantoms import generate_dataset

torch.set_num_threads(1)
CHANNELS = get_target("organs").channels


def test_guard_refuses_every_way_of_opening_a_site_file_and_nothing_else(tmp_path: Path) -> None:
    site, elsewhere = tmp_path / "site", tmp_path / "server"
    site.mkdir()
    elsewhere.mkdir()
    np.save(site / "img.npy", np.zeros(3))
    (elsewhere / "ok.txt").write_text("x")
    (tmp_path / "link").symlink_to(site)
    readers = [
        lambda: open(site / "img.npy", "rb").close(),
        lambda: np.load(site / "img.npy"),
        lambda: os.close(os.open(site / "img.npy", os.O_RDONLY)),
        lambda: (tmp_path / "link" / "img.npy").read_bytes(),  # the same file through a symlink
        lambda: (site / "new.txt").write_text("leak"),
    ]
    with SiteFileGuard([site]) as guard:
        for read in readers:
            with pytest.raises(SiteDataAccessError):
                read()
        assert (elsewhere / "ok.txt").read_text() == "x"  # the server's own files stay readable
        assert site.is_dir() and sorted(p.name for p in site.iterdir()) == ["img.npy"]  # listing is not reading
    assert len(guard.attempts) == len(readers)
    assert np.load(site / "img.npy").shape == (3,)  # outside the guard nothing is refused


def test_local_training_lowers_the_loss_and_dp_training_spends_epsilon(tmp_path: Path) -> None:
    generate_dataset(tmp_path / "site", cases=7, seed=3, size=32, sites=1, workers=1)
    data, described = load_site(tmp_path / "site", "unet-small", "organs", "train")
    assert described["cases"]["train"] == len(set(data.case_ids)) and len(described["dataset_sha256"]) == 64
    plan = LocalPlan(target="organs", patch=(32, 32), steps=1, lr=3e-3, batch_size=8, seed=0)

    torch.manual_seed(0)
    net = build_network("unet-small", out_channels=CHANNELS)
    first = local_train(net, data, plan)["train-loss"]
    later = local_train(net, data, dataclasses.replace(plan, steps=6))["train-loss"]
    assert later < first

    torch.manual_seed(0)
    net = build_network("unet-small", out_channels=CHANNELS)
    bn_before = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}
    trained, metrics = dp_local_train(net, data, dataclasses.replace(plan, steps=2), noise=1.0, clip=1.0)
    assert 0 < metrics["dp-epsilon"] < float("inf") and metrics["train-loss"] > 0
    after = trained.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in bn_before.items())  # BatchNorm statistics stay global
    assert set(after) == set(build_network("unet-small", out_channels=CHANNELS).state_dict())  # plain keys again

    # one slice per Poisson batch on average: some batches are empty and still take their noise-only step
    few = ArraySet(data.images[:12], data.targets[:12], data.case_ids[:12], data.slices[:12])
    fresh = build_network("unet-small", out_channels=CHANNELS)
    _, sparse = dp_local_train(fresh, few, dataclasses.replace(plan, batch_size=1, steps=12), noise=1.0, clip=1.0)
    assert 0 < sparse["dp-epsilon"] < float("inf")
    fresh = build_network("unet-small", out_channels=CHANNELS)
    plan12 = dataclasses.replace(plan, batch_size=1, steps=12)
    _, third = dp_local_train(fresh, few, plan12, noise=1.0, clip=1.0, rounds_so_far=3)
    assert third["dp-epsilon"] > sparse["dp-epsilon"]  # a site's ε accumulates over the rounds
