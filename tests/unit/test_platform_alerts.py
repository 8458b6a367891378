"""The platform's Prometheus alert rules (001 §10.2.3): valid for promtool, each firing on its fault and
quiet on a healthy platform (``promtool test rules`` on synthetic series), and written against metrics and
labels the running platform really exposes."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from platform_support import cube_mask, make_site, npy
from prometheus_client.parser import text_string_to_metric_families

import aimd.platform

RULES = Path(aimd.platform.__file__).parent / "alerts.yml"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool missing: apt-get install prometheus")

SAVE = 'aimd_platform_request_seconds_bucket{method="PUT",route="/api/v1/tasks/{task_id}/draft",le="%s"}'
# per alert: the series of its fault (values every minute over 20 minutes)
FAULTS = {
    "AimdPlatformDown": {'up{job="aimd-platform",instance="p:8600"}': "1 1 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"},
    "AimdPlatformServerErrors": {
        'aimd_platform_requests_total{method="GET",route="/api/v1/tasks",status="500"}': "0+3x20"
    },
    "AimdPlatformDatabaseUnreachable": {
        'aimd_platform_requests_total{method="GET",route="/v2/health/ready",status="503"}': "0+6x20"
    },
    "AimdPlatformSlowSaves": {  # every save between 0.5 s and 1 s
        SAVE % "0.25": "0+0x20",
        SAVE % "0.5": "0+0x20",
        SAVE % "1.0": "0+60x20",
        SAVE % "+Inf": "0+60x20",
    },
    "AimdPlatformFailedLogins": {
        'aimd_platform_requests_total{method="POST",route="/api/v1/auth/login",status="401"}': "0+10x20"
    },
}
# a healthy platform: up, no 5xx, ready, saves below 250 ms, a failed login now and then
HEALTHY = {
    'up{job="aimd-platform",instance="p:8600"}': "1+0x20",
    'aimd_platform_requests_total{method="GET",route="/api/v1/tasks",status="200"}': "0+100x20",
    'aimd_platform_requests_total{method="GET",route="/v2/health/ready",status="200"}': "0+6x20",
    'aimd_platform_requests_total{method="POST",route="/api/v1/auth/login",status="401"}': "0+1x20",
    SAVE % "0.25": "0+60x20",
    SAVE % "0.5": "0+60x20",
    SAVE % "1.0": "0+60x20",
    SAVE % "+Inf": "0+60x20",
}


def _rules() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"]}


def _expect(rule: dict) -> dict:
    labels = {**rule.get("labels", {})}
    return {"exp_labels": labels, "exp_annotations": rule.get("annotations", {})}


def _promtool_test(tmp_path: Path, tests: list[dict]) -> subprocess.CompletedProcess:
    spec = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests}
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, timeout=120)


def _series(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"series": s, "values": v} for s, v in values.items()]


@needs_promtool
def test_rules_are_valid_for_promtool() -> None:
    out = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "5 rules found" in out.stdout, out.stdout + out.stderr


@needs_promtool
def test_each_alert_fires_on_its_fault_and_none_on_a_healthy_platform(tmp_path: Path) -> None:
    rules = _rules()
    assert set(rules) == set(FAULTS)
    tests = []
    for name, series in FAULTS.items():
        labels = {}
        if name == "AimdPlatformDown":  # the firing alert keeps the series' labels
            labels = {"job": "aimd-platform", "instance": "p:8600"}
        expected = _expect(rules[name])
        expected["exp_labels"] = {**expected["exp_labels"], **labels}
        tests.append(
            {
                "interval": "1m",
                "input_series": _series(series),
                "alert_rule_test": [
                    {"eval_time": "20m", "alertname": name, "exp_alerts": [expected]},
                    # the faults of the other alerts are not in this series set: they stay quiet
                    *({"eval_time": "20m", "alertname": other, "exp_alerts": []} for other in FAULTS if other != name),
                ],
            }
        )
    tests.append(
        {
            "interval": "1m",
            "input_series": _series(HEALTHY),
            "alert_rule_test": [{"eval_time": "20m", "alertname": name, "exp_alerts": []} for name in FAULTS],
        }
    )
    out = _promtool_test(tmp_path, tests)
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_a_rule_that_misses_its_fault_fails_the_promtool_test(tmp_path: Path) -> None:
    """The check above can fail: expecting the failed-logins alert on a healthy platform is reported."""
    tests = [
        {
            "interval": "1m",
            "input_series": _series(HEALTHY),
            "alert_rule_test": [
                {
                    "eval_time": "20m",
                    "alertname": "AimdPlatformFailedLogins",
                    "exp_alerts": [_expect(_rules()["AimdPlatformFailedLogins"])],
                }
            ],
        }
    ]
    out = _promtool_test(tmp_path, tests)
    assert out.returncode != 0 and "AimdPlatformFailedLogins" in out.stdout + out.stderr


def test_rules_use_metrics_and_labels_the_platform_exposes(tmp_path: Path) -> None:
    site = make_site(tmp_path / "data", None)
    try:
        project, user, task = site.one_task()
        assert site.save(user, task["id"], cube_mask()).status_code == 200
        site.client.post("/api/v1/auth/login", json={"username": user, "password": "wrong password 1"})
        site.client.get("/v2/health/ready")
        site.client.put(f"/api/v1/tasks/{task['id']}/draft", content=npy(cube_mask())[:-5], headers=site.as_(user))
        text = site.client.get("/metrics").text
    finally:
        site.platform.close()
    samples = [(s.name, dict(s.labels)) for fam in text_string_to_metric_families(text) for s in fam.samples]

    def exposed(name: str, **labels: str) -> bool:
        return any(n == name and all(have.get(k) == v for k, v in labels.items()) for n, have in samples)

    assert exposed("aimd_platform_requests_total", route="/api/v1/auth/login", status="401")
    assert exposed("aimd_platform_requests_total", route="/v2/health/ready", status="200")
    assert exposed("aimd_platform_requests_total", route="/api/v1/tasks/{task_id}/draft", status="428")
    assert exposed(
        "aimd_platform_request_seconds_bucket", method="PUT", route="/api/v1/tasks/{task_id}/draft", le="0.5"
    )
    rules_text = RULES.read_text()
    for metric in ("aimd_platform_requests_total", "aimd_platform_request_seconds_bucket"):
        assert metric in rules_text
