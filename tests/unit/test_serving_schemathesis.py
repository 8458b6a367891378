"""Schemathesis over the service's OpenAPI: generated requests never cause a server error (5xx)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install schemathesis)")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from aimd.models.adapters.torch_module import TorchModulePredictor  # noqa: E402
from aimd.serving.app import create_app  # noqa: E402
from aimd.serving.db import ServingDB  # noqa: E402
from aimd.serving.registry import ModelRegistry  # noqa: E402
from aimd.serving.settings import ServeSettings  # noqa: E402
from serving_support import CT_SPEC, SEG_SPEC, blob_net  # noqa: E402

TOKEN: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory):
    import torch

    root = tmp_path_factory.mktemp("st")
    net = blob_net()
    torch.save(net.state_dict(), root / "w.pt")
    registry = ModelRegistry()
    registry.add("blob", TorchModulePredictor(net, CT_SPEC, SEG_SPEC), root / "w.pt", "1.0")
    settings = ServeSettings(data_dir=root / "data", explain=False, rate_per_minute=100000)
    db = ServingDB(settings.database)
    TOKEN["value"] = db.create_token(["infer", "review", "admin"], name="fuzz")[0]
    db.engine.dispose()
    app = create_app(settings, registry)
    with TestClient(app):  # runs the lifespan: the service is up while the schema is exercised
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def test_no_server_errors(api_schema):
    from hypothesis import given

    failures: list[tuple[str, str, int, str]] = []
    statuses: list[int] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            response = case.call(headers={"Authorization": f"Bearer {TOKEN['value']}"})
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append((case.method, case.formatted_path, response.status_code, response.text[:200]))

        run()
    assert failures == []
    assert len(statuses) >= 2 * len(operations) and any(s < 300 for s in statuses) and any(s >= 400 for s in statuses)
