"""Schemathesis over the platform's OpenAPI: generated requests to every operation, as an admin and as an
annotator, give no server error (5xx) and answers that match the published response schemas; every route
publishes a schema for its success answer and its error bodies."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from platform_support import cube_mask, make_site
from schemathesis.checks import not_a_server_error, response_schema_conformance

from aimd.platform.api import create_app


@pytest.fixture(scope="module")
def platform_site(tmp_path_factory: pytest.TempPathFactory):
    site = make_site(Path(tmp_path_factory.mktemp("schema")) / "data", None)
    project, user, task = site.one_task()
    site.save(user, task["id"], cube_mask())
    yield site
    site.platform.close()


def test_no_server_errors(platform_site) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(platform_site.platform))
    server_errors: list[str] = []
    statuses: dict[int, int] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in ("/api/v1/auth/logout", "/api/v1/users/{username}"):
            continue  # they end or disable the sessions the other requests use; tested in test_platform_api
        operations += 1

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case) -> None:
            for user in ("admin", "ann1"):
                headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
                response = case.call(headers={**headers, **platform_site.as_(user)})
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                if response.status_code >= 500:
                    server_errors.append(f"{case.method} {case.formatted_path} as {user}: {response.text[:200]}")
                # the answer matches the schema published for its status (raises naming the mismatch)
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

        check()
    assert operations >= 25, operations
    assert sum(n for code, n in statuses.items() if code < 300) > 20, statuses  # not only refusals
    assert server_errors == []


def _unpublished(doc: dict) -> tuple[int, list[str]]:
    """The number of routes and each route, status or error body the OpenAPI document gives no schema."""
    missing: list[str] = []
    routes = 0
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            routes += 1
            responses = op.get("responses", {})
            success = [code for code in responses if code.startswith("2")]
            if not success:
                missing.append(f"{method.upper()} {path}: no success answer")
            for code in success:
                content = responses[code].get("content") or {}
                if not content or any(not media.get("schema") for media in content.values()):
                    missing.append(f"{method.upper()} {path} {code}: no schema")
            for code in ("401", "403", "404", "422"):
                schema = (responses.get(code, {}).get("content") or {}).get("application/json", {}).get("schema")
                if not schema:
                    missing.append(f"{method.upper()} {path} {code}: no error body")
    return routes, missing


def test_every_route_publishes_its_answer_and_error_schemas(platform_site) -> None:
    doc = create_app(platform_site.platform).openapi()
    routes, missing = _unpublished(doc)
    assert routes >= 40 and missing == [], (routes, missing)
    assert doc["components"]["schemas"]["ErrorOut"]["required"] == ["error", "message"]
    draft = doc["paths"]["/api/v1/tasks/{task_id}/draft"]
    assert draft["get"]["responses"]["200"]["content"]["application/octet-stream"]["schema"]["format"] == "binary"
    assert {"400", "413", "415", "428"} <= set(draft["put"]["responses"])


def test_a_route_without_an_answer_schema_is_caught(platform_site) -> None:
    from fastapi import FastAPI

    app = create_app(platform_site.platform)
    app.add_api_route("/api/v1/untyped", lambda: {}, methods=["GET"], response_model=None)
    bare = FastAPI()
    bare.add_api_route("/api/v1/bare", lambda: {}, methods=["GET"], response_model=dict)
    assert _unpublished(app.openapi())[1] == ["GET /api/v1/untyped 200: no schema"]
    assert "GET /api/v1/bare 401: no error body" in _unpublished(bare.openapi())[1]
