"""The platform stage of ``aimd demo``: a SQLite platform, de-identified phantom cases imported through
the API, two simulated readers, agreement routing one case to arbitration, review, freeze, export and
an audit check.

The readers are the phantom's ground-truth lung mask (reader 1) and the same mask moved by the
annotation engine's simulation operations (reader 2: exact on the first case, shifted on the second),
so the second case falls below the Dice threshold and goes to an arbiter.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import binary_fill_holes

from aimd.annotation.simulate_ops import apply_op
from aimd.core.config import PlatformSettings
from aimd.core.errors import InvalidInputError
from aimd.core.otp import next_code
from aimd.imaging.nifti_io import read_nifti
from aimd.platform.app_state import Platform
from aimd.platform.auth import create_user

__all__ = ["run_platform_demo"]

LUNG = 2  # the phantom's label value of the lungs (taxonomy mask_value of LUNG)
TASK = {
    "goal": "outline both lungs on de-identified chest CT phantoms",
    "modalities": ["CT", "report text", "clinical fields"],
    "objects_and_outputs": "lung label mask per reader (label-map .npy on the CT grid)",
    "alignment_rules": "image, report and clinical fields of one examination stay together",
    "qc_and_traceability": "level-1 QC, 2 readers, Dice ≥ 0.85 else arbitration, review, audit",
}


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def run_platform_demo(
    source: Path, out: Path, *, cases: int = 2, progress: Callable[[str], object] | None = None
) -> dict[str, Any]:
    """Run the platform workflow on ``cases`` de-identified phantom cases under ``source/cases``."""
    from fastapi.testclient import TestClient

    from aimd.platform.api import create_app

    step = progress or (lambda _s: None)
    folders = sorted((Path(source) / "cases").glob("case_*"))[:cases]
    if len(folders) < 2:
        raise InvalidInputError(
            "the platform demo needs two phantom cases", where=str(source), hint="generate at least two cases"
        )
    shutil.rmtree(out, ignore_errors=True)
    settings = PlatformSettings()
    platform = Platform.open(out, settings=settings)
    accounts = {
        "admin": "admin",
        "intake": "intake",
        "reader1": "annotator",
        "reader2": "annotator",
        "reviewer": "reviewer",
        "arbiter": "arbiter",
    }
    shown = {}
    with platform.sessions() as db:
        for name, role in accounts.items():
            shown[name] = create_user(
                db, platform.audit, settings, username=name, role=role, clearance=2, actor="aimd demo"
            )[1]
        db.commit()
    client = TestClient(create_app(platform))
    headers = {}
    for name, s in shown.items():
        body = {
            "username": name,
            "password": s["password"],
            "totp": next_code(s["totp_secret"]),
        }
        headers[name] = {"Authorization": f"Bearer {client.post('/api/v1/auth/login', json=body).json()['token']}"}

    def call(method: str, url: str, user: str, **kw: Any) -> Any:
        r = client.request(method, url, headers={**headers[user], **kw.pop("headers", {})}, **kw)
        if r.status_code >= 400:
            raise InvalidInputError(
                f"{method} {url} answered {r.status_code}: {r.text[:300]}",
                where="platform demo",
                hint="see the platform's audit log",
            )
        return r

    step("project")
    project = call(
        "POST",
        "/api/v1/projects",
        "admin",
        json={"name": "demo-lungs", "task_definition": TASK, "label_map": {str(LUNG): "LUNG"}, "readers": 2},
    ).json()["id"]
    truth = {}
    for folder in folders:
        report = folder / "report_zh.txt"
        clinical = folder / "clinical.json"
        call(
            "POST",
            f"/api/v1/projects/{project}/cases",
            "intake",
            json={
                "case_key": folder.name,
                "image_nifti_b64": base64.b64encode((folder / "ct.nii.gz").read_bytes()).decode(),
                "report_text": report.read_text(encoding="utf-8") if report.exists() else "",
                "fields": json.loads(clinical.read_text(encoding="utf-8")) if clinical.exists() else {},
                "source": {"dataset": "aimd phantoms, de-identified", "folder": folder.name},
            },
        )
        labels = np.asarray(read_nifti(folder / "labels.nii.gz").array)
        # nodules and vessels inside the lungs belong to the organ outline: fill each axial slice
        lungs = np.stack([binary_fill_holes(sl) for sl in labels == LUNG])
        truth[folder.name] = np.where(lungs, LUNG, 0).astype(np.uint8)
    step("distribute")
    call("POST", f"/api/v1/projects/{project}/distribute", "admin", json={})
    cases = {c["id"]: c["case_key"] for c in call("GET", f"/api/v1/projects/{project}/cases", "admin").json()}
    step("readers")
    routes = {}
    for reader in ("reader1", "reader2"):
        for task in call("GET", "/api/v1/tasks", reader).json():
            key = cases[task["case"]]
            lung = truth[key]
            if reader == "reader2" and key == folders[1].name:
                moved = apply_op(lung > 0, "shift", (0, 6, 0))
                lung = np.where(moved, LUNG, 0).astype(np.uint8)
            call(
                "PUT",
                f"/api/v1/tasks/{task['id']}/draft",
                reader,
                content=_npy(lung),
                headers={"If-Match": '"0"', "Content-Type": "application/octet-stream"},
            )
            routed = call(
                "POST", f"/api/v1/tasks/{task['id']}/submit", reader, headers={"Idempotency-Key": f"demo-{task['id']}"}
            ).json()["routed"]
            routes[key] = routed
    step("arbitration")
    arbitrated = 0
    for task in call("GET", "/api/v1/tasks", "arbiter", params={"status": "open"}).json():
        call(
            "PUT",
            f"/api/v1/tasks/{task['id']}/draft",
            "arbiter",
            content=_npy(truth[cases[task["case"]]]),
            headers={"If-Match": '"0"', "Content-Type": "application/octet-stream"},
        )
        call("POST", f"/api/v1/tasks/{task['id']}/submit", "arbiter", headers={"Idempotency-Key": f"arb-{task['id']}"})
        arbitrated += 1
    step("review")
    for task in call("GET", "/api/v1/tasks", "reviewer", params={"status": "open"}).json():
        call("POST", f"/api/v1/tasks/{task['id']}/review", "reviewer", json={"outcome": "accept"})
    step("freeze and export")
    call("POST", f"/api/v1/projects/{project}/freeze", "admin")
    exported = call("POST", f"/api/v1/projects/{project}/export", "admin").json()
    verify = call("GET", "/api/v1/audit/verify", "admin").json()
    platform.close()
    return {
        "data": str(out),
        "cases": len(cases),
        "routes": {k: v["next"] for k, v in routes.items()},
        "min_dice": {k: (v.get("agreement") or {}).get("min_dice") for k, v in routes.items()},
        "arbitrated": arbitrated,
        "export": exported["version_dir"],
        "traceability": exported["traceability"],
        "audit_entries": verify["entries"],
        "audit_ok": verify["ok"],
    }
