"""The API the browser workspace uses beside the platform's own: vector objects, report spans and links
in the App. C submission (001 App. C.3, §8.5.2), reader masks for review, window presets, label names,
and the workspace served at `/`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from platform_support import NODULE, cube_mask, make_site, npy

BOX = {"id": "box_1", "label_code": "LUNG_NODULE", "type": "bbox", "bbox": [5, 5, 9, 9], "slice_index": 2}
SPAN = {"id": "span_1", "start": 5, "end": 7, "text": "结节", "semantic_type": "finding"}


@pytest.fixture
def site(tmp_path: Path):
    s = make_site(tmp_path / "data", None)
    yield s
    s.platform.close()


def _task(site, project: int) -> int:
    site.case(project)
    site.client.post(f"/api/v1/projects/{project}/distribute", json={}, headers=site.as_("admin"))
    task = site.tasks("ann1")[0]["id"]
    assert site.save("ann1", task, cube_mask()).status_code == 200
    return task


def _submit(site, task: int, **marks):
    return site.client.post(
        f"/api/v1/tasks/{task}/submit",
        json={"attributes": NODULE, **marks},
        headers={**site.as_("ann1"), "Idempotency-Key": f"ws-{task}"},
    )


def test_box_span_and_link_reach_the_submission(site) -> None:
    task = _task(site, site.project())
    box = {**BOX, "attributes": NODULE["5"], "links": ["span_1"]}
    r = _submit(site, task, objects=[box], spans=[SPAN], links={"5": ["span_1"]})
    assert r.status_code == 200, r.text
    case = site.tasks("ann1")[0]["case"]
    subs = site.client.get(f"/api/v1/cases/{case}/submissions", headers=site.as_("rev")).json()
    marks = subs[0]["qc"]["marks"]
    assert marks["objects"][0]["bbox"] == [5, 5, 9, 9] and marks["links"] == {"5": ["span_1"]}
    mask = site.client.get(f"/api/v1/submissions/{subs[0]['id']}/mask", headers=site.as_("rev"))
    assert mask.status_code == 200 and mask.content == npy(cube_mask())


def test_span_outside_the_report_or_bad_box_is_refused(site) -> None:
    project = site.project()
    task = _task(site, project)
    bad_box = {**BOX, "bbox": [9, 9, 5, 5], "attributes": NODULE["5"]}
    r = _submit(site, task, objects=[bad_box])
    assert r.status_code == 422 and "BBOX" in r.text
    r = _submit(site, task, objects=[{**BOX, "type": "bbox", "bbox": None}])
    assert r.status_code == 422 and r.json()["where"] == "objects"
    r = _submit(site, task, spans=[{**SPAN, "start": 7, "end": 5}])
    assert r.status_code == 422 and r.json()["where"] == "spans"
    r = _submit(site, task, links={"5": ["span_9"]})
    assert r.status_code == 422, "a link to a span that does not exist must not pass QC"


def test_labels_presets_and_mask_access(site) -> None:
    project = site.project()
    body = site.client.get(f"/api/v1/projects/{project}", headers=site.as_("admin")).json()
    nodule = next(lab for lab in body["labels"] if lab["code"] == "LUNG_NODULE")
    assert nodule["value"] == 5 and nodule["name_zh"] and {a["name"] for a in nodule["attributes"]} >= {"density"}
    presets = site.client.get("/api/v1/windowing", headers=site.as_("ann1")).json()
    assert presets["lung"] == {"center": -600.0, "width": 1500.0}
    assert site.client.get("/api/v1/windowing").status_code == 401
    task = _task(site, project)
    assert _submit(site, task).status_code == 200
    case = site.tasks("ann1")[0]["case"]
    sub = site.client.get(f"/api/v1/cases/{case}/submissions", headers=site.as_("rev")).json()[0]["id"]
    assert site.client.get(f"/api/v1/submissions/{sub}/mask", headers=site.as_("ann1")).status_code == 403
    assert site.client.get("/api/v1/submissions/999/mask", headers=site.as_("rev")).status_code == 404


def test_workspace_is_served_at_root(site) -> None:
    r = site.client.get("/")
    assert r.status_code == 200 and "app.js" in r.text
    js = site.client.get("/app.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert np.frombuffer(js.content[:2], np.uint8).size == 2
