"""Per-project member lists: outside the list an account sees nothing of the project (001 §11.1.1, §11.1.2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from platform_support import cube_mask, make_site
from typer.testing import CliRunner

from aimd.cli.main import app
from aimd.core.errors import InvalidInputError


@pytest.fixture
def site(tmp_path: Path, database_url: str):
    s = make_site(tmp_path / "data", database_url)
    yield s
    s.platform.close()


def _sees(site, user: str, project: int) -> bool:
    listed = [p["id"] for p in site.client.get("/api/v1/projects", headers=site.as_(user)).json()]
    one = site.client.get(f"/api/v1/projects/{project}", headers=site.as_(user)).status_code
    assert (project in listed) == (one == 200)
    return one == 200


def test_members_only_project_is_invisible_outside_its_member_list(site) -> None:
    project = site.project(readers=1)
    case = site.case(project)
    assert _sees(site, "qc", project) and _sees(site, "rev", project)  # open project: global roles decide
    r = site.client.post(
        f"/api/v1/projects/{project}/members",
        json={"usernames": ["ann1", "rev", "arb", "intake", "nobody"]},
        headers=site.as_("admin"),
    )
    assert r.status_code == 404 and "nobody" in r.json()["message"]
    r = site.client.post(
        f"/api/v1/projects/{project}/members", json={"usernames": ["ann1", "rev", "intake"]}, headers=site.as_("admin")
    )
    assert r.status_code == 200, r.text
    assert r.json()["members_only"] and [m["username"] for m in r.json()["members"]] == ["ann1", "intake", "rev"]
    assert not _sees(site, "qc", project) and _sees(site, "rev", project)
    assert site.client.get(f"/api/v1/projects/{project}/cases", headers=site.as_("qc")).status_code == 404

    r = site.client.post(
        f"/api/v1/projects/{project}/distribute", json={"annotators": ["ann2"]}, headers=site.as_("admin")
    )
    assert r.status_code == 409 and "member list" in r.json()["message"]
    r = site.client.post(f"/api/v1/projects/{project}/distribute", json={}, headers=site.as_("admin"))
    assert [t["assignee"] for t in r.json()["created"]] and site.tasks("ann2") == []
    assert not _sees(site, "ann2", project) and _sees(site, "ann1", project)
    (task,) = site.tasks("ann1")
    assert site.save("ann1", task["id"], cube_mask()).status_code == 200
    routed = site.submit("ann1", task["id"]).json()["routed"]
    assert routed["next"] == "review"
    assert [t["id"] for t in site.tasks("rev")] == [routed["task"]]  # the reviewer is a member

    subs = site.client.get(f"/api/v1/cases/{case}/submissions", headers=site.as_("rev"))
    assert subs.status_code == 200 and len(subs.json()) == 1
    sub = subs.json()[0]["id"]
    for url in (
        f"/api/v1/cases/{case}/submissions",
        f"/api/v1/submissions/{sub}/mask",
        f"/api/v1/diff?a={sub}&b={sub}",
    ):
        assert site.client.get(url, headers=site.as_("qc")).status_code == 404, url
        assert site.client.get(url, headers=site.as_("rev")).status_code == 200, url

    r = site.client.delete(f"/api/v1/projects/{project}/members/rev", headers=site.as_("admin"))
    assert r.status_code == 200 and r.json()["open_tasks_of_removed"] == [routed["task"]]
    assert not _sees(site, "rev", project)
    assert site.tasks("rev") == []
    assert site.client.get(f"/api/v1/tasks/{routed['task']}", headers=site.as_("rev")).status_code == 404
    r = site.client.post(f"/api/v1/tasks/{routed['task']}/review", json={"outcome": "accept"}, headers=site.as_("rev"))
    assert r.status_code == 404
    assert site.client.delete(f"/api/v1/projects/{project}/members/rev", headers=site.as_("admin")).status_code == 404
    actions = [e["action"] for e in site.platform.audit.entries()]
    assert "project.members.add" in actions and "project.members.remove" in actions
    assert site.platform.audit.verify() is None


def test_member_cli_lists_adds_and_removes(site) -> None:
    project = site.project(readers=1, name="cli")
    base = ["--data", str(site.platform.data_dir), "--db", site.platform.database_url, "--json"]
    runner = CliRunner()
    r = runner.invoke(app, ["platform", "member", "list", "cli", *base])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"project": project, "members_only": False, "members": []}
    r = runner.invoke(app, ["platform", "member", "add", "cli", "ann1", "rev", *base])
    assert r.exit_code == 0, r.output
    assert [m["username"] for m in json.loads(r.stdout)["members"]] == ["ann1", "rev"]
    assert not _sees(site, "qc", project)
    r = runner.invoke(app, ["platform", "member", "remove", str(project), "rev", *base])
    assert r.exit_code == 0 and [m["username"] for m in json.loads(r.stdout)["members"]] == ["ann1"]
    r = runner.invoke(app, ["platform", "member", "add", "no-such-project", "ann1", *base])
    assert isinstance(r.exception, InvalidInputError) and "no-such-project" in r.exception.message
