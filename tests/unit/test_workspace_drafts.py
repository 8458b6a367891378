"""Server-side drafts of vector objects and report spans (001 App. C, §8.5.2): autosave with If-Match,
409 on a stale version, resume by GET, refusal of marks that could not be exported, audit entries."""

from __future__ import annotations

from pathlib import Path

import pytest
from platform_support import make_site

REPORT = "右肺上叶见结节，大小约 8 mm。"  # the report of platform_support's case
BOX = {"id": "box_1", "label_code": "LUNG_NODULE", "type": "bbox", "bbox": [3, 4, 9, 10], "slice_index": 2}
SPAN = {"id": "span_1", "start": 5, "end": 7, "text": "结节", "semantic_type": "finding"}


@pytest.fixture
def site(tmp_path: Path):
    s = make_site(tmp_path / "data", None)
    yield s
    s.platform.close()


def _put(site, user: str, task: int, body: dict, version: int | None):
    headers = dict(site.as_(user))
    if version is not None:
        headers["If-Match"] = f'"{version}"'
    return site.client.put(f"/api/v1/tasks/{task}/marks", json=body, headers=headers)


def test_marks_are_saved_versioned_and_resumed(site) -> None:
    _, user, task = site.one_task()
    empty = site.client.get(f"/api/v1/tasks/{task['id']}/marks", headers=site.as_(user))
    assert empty.status_code == 200 and empty.json()["version"] == 0 and empty.json()["objects"] == []
    body = {"objects": [{**BOX, "links": ["span_1"]}], "spans": [SPAN], "links": {"5": ["span_1"]}}
    r = _put(site, user, task["id"], body, 0)
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1 and r.headers["etag"] == '"1"'
    back = site.client.get(f"/api/v1/tasks/{task['id']}/marks", headers=site.as_(user)).json()
    assert back["objects"][0]["bbox"] == [3, 4, 9, 10] and back["spans"][0]["text"] == "结节"
    assert back["links"] == {"5": ["span_1"]} and back["version"] == 1
    audit = site.client.get("/api/v1/audit", params={"action": "marks.save"}, headers=site.as_("admin")).json()
    assert [e["subject"] for e in audit] == [f"task:{task['id']}"]


def test_a_stale_or_missing_version_is_refused(site) -> None:
    _, user, task = site.one_task()
    assert _put(site, user, task["id"], {"objects": [BOX]}, 0).status_code == 200
    stale = _put(site, user, task["id"], {"objects": []}, 0)
    assert stale.status_code == 409 and "version 0" in stale.json()["message"]
    assert _put(site, user, task["id"], {"objects": []}, None).status_code == 428
    kept = site.client.get(f"/api/v1/tasks/{task['id']}/marks", headers=site.as_(user)).json()
    assert kept["objects"] == [BOX], "a refused save changed the stored marks"


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"objects": [{**BOX, "bbox": [9, 4, 3, 10]}]}, "objects[0]"),
        ({"objects": [{**BOX, "slice_index": 99}]}, "objects[0]"),
        ({"objects": [{**BOX, "type": "circle"}]}, "objects[0]"),
        (
            {"objects": [{"id": "p", "label_code": "LUNG_NODULE", "type": "polygon", "polygon": [[1, 1], [2, 2]]}]},
            "objects[0]",
        ),
        ({"spans": [{**SPAN, "text": "肿块"}]}, "spans[0]"),
        ({"spans": [{**SPAN, "end": 500}]}, "spans[0]"),
        ({"spans": [SPAN], "links": {"5": ["span_9"]}}, "links"),
    ],
)
def test_marks_that_could_not_be_exported_are_refused(site, body: dict, where: str) -> None:
    _, user, task = site.one_task()
    r = _put(site, user, task["id"], body, 0)
    assert r.status_code == 422 and r.json()["where"] == where, r.text


def test_only_the_assignee_saves_marks(site) -> None:
    _, user, task = site.one_task()
    other = "ann2" if user == "ann1" else "ann1"
    assert _put(site, other, task["id"], {"objects": [BOX]}, 0).status_code == 404
    assert _put(site, "rev", task["id"], {"objects": [BOX]}, 0).status_code == 404
