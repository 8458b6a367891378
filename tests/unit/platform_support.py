"""Helpers of the platform tests: a platform with one account per role, logins, images and masks."""

from __future__ import annotations

import base64
import io
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from aimd.core.config import PlatformSettings
from aimd.core.otp import next_code
from aimd.imaging.nifti_io import write_nifti
from aimd.imaging.volume import Volume
from aimd.platform import Platform
from aimd.platform.api import create_app
from aimd.platform.auth import create_user

SHAPE = (6, 16, 16)
LABELS = {1: "LUNG", 5: "LUNG_NODULE"}
PASSWORD = "correct horse 42 battery"
NODULE = {"5": {"density": "solid", "margin": "well_defined", "diameter_mm": 4.0, "lobe": "RUL"}}
TASK_DEFINITION = {
    "goal": "outline lung nodules on chest CT",
    "modalities": ["CT", "report text"],
    "objects_and_outputs": "lung mask and nodule masks; label-map NIfTI per reader",
    "alignment_rules": "nodules link to report findings of the same examination",
    "qc_and_traceability": "level-1 QC, two readers, Dice ≥ 0.85, review, audit trail",
}


def nifti_b64(seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    arr = (rng.normal(0, 20, SHAPE) - 800).astype(np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ct.nii.gz"
        write_nifti(Volume(arr, spacing=(0.8, 0.8, 2.0), modality="CT"), path)
        return base64.b64encode(path.read_bytes()).decode()


def npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def cube_mask(grow: int = 0) -> np.ndarray:
    mask = np.zeros(SHAPE, np.uint8)
    mask[1:5, 2:14, 2:14] = 1
    mask[2:4, 5 - grow : 9 + grow, 5 - grow : 9 + grow] = 5
    return mask


@dataclass
class Site:
    """A running platform (in-process) with an account per role and logged-in headers."""

    platform: Platform
    client: TestClient
    secrets: dict[str, dict[str, Any]] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    def login(self, username: str, password: str = PASSWORD) -> dict[str, str]:
        secret = self.secrets[username].get("totp_secret")
        body = {"username": username, "password": password, "totp": next_code(secret)}
        r = self.client.post("/api/v1/auth/login", json=body)
        assert r.status_code == 200, r.text
        self.headers[username] = {"Authorization": f"Bearer {r.json()['token']}"}
        return self.headers[username]

    def as_(self, username: str) -> dict[str, str]:
        return self.headers[username]

    def project(self, readers: int = 2, name: str = "nodules") -> int:
        body = {
            "name": name,
            "task_definition": TASK_DEFINITION,
            "label_map": LABELS,
            "readers": readers,
            "sampling_ratio": 0.5,
        }
        r = self.client.post("/api/v1/projects", json=body, headers=self.as_("admin"))
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def case(self, project: int, key: str = "case-1", seed: int = 0) -> int:
        body = {
            "case_key": key,
            "image_nifti_b64": nifti_b64(seed),
            "report_text": "右肺上叶见结节，大小约 8 mm。",
            "fields": {"age": 61, "smoking": "former"},
            "source": {"site": "phantom", "batch": "b1"},
        }
        r = self.client.post(f"/api/v1/projects/{project}/cases", json=body, headers=self.as_("intake"))
        assert r.status_code == 201, r.text
        return r.json()["id"]

    def one_task(self) -> tuple[int, str, dict[str, Any]]:
        """A one-reader project with one case distributed: (project, annotator, task)."""
        project = self.project(readers=1)
        self.case(project)
        self.client.post(f"/api/v1/projects/{project}/distribute", json={}, headers=self.as_("admin"))
        user = "ann1" if self.tasks("ann1") else "ann2"
        (task,) = self.tasks(user)
        return project, user, task

    def tasks(self, username: str, **params: Any) -> list[dict[str, Any]]:
        r = self.client.get("/api/v1/tasks", params=params, headers=self.as_(username))
        assert r.status_code == 200, r.text
        return r.json()

    def save(self, username: str, task: int, mask: np.ndarray, version: int | None = None) -> Any:
        if version is None:
            version = self.client.get(f"/api/v1/tasks/{task}", headers=self.as_(username)).json()["draft_version"]
        return self.client.put(
            f"/api/v1/tasks/{task}/draft",
            content=npy(mask),
            headers={**self.as_(username), "If-Match": f'"{version}"', "Content-Type": "application/octet-stream"},
        )

    def submit(self, username: str, task: int, key: str | None = None, attributes: Any = None) -> Any:
        return self.client.post(
            f"/api/v1/tasks/{task}/submit",
            json={"attributes": attributes or NODULE},
            headers={**self.as_(username), "Idempotency-Key": key or f"submit-{task}"},
        )


ROLES = {
    "admin": "admin",
    "intake": "intake",
    "ann1": "annotator",
    "ann2": "annotator",
    "rev": "reviewer",
    "qc": "qc",
    "arb": "arbiter",
}


def make_site(data_dir: Path, database_url: str | None) -> Site:
    from argon2 import PasswordHasher

    from aimd.platform import auth

    auth._HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # still argon2id, cheaper
    settings = PlatformSettings(blob_gc_grace_seconds=0)
    platform = Platform.open(data_dir, database_url=database_url, settings=settings)
    site = Site(platform, TestClient(create_app(platform)))
    with platform.sessions() as db:
        for name, role in ROLES.items():
            _, shown = create_user(
                db, platform.audit, settings, username=name, role=role, password=PASSWORD, clearance=2
            )
            site.secrets[name] = shown
        db.commit()
    for name in ROLES:
        site.login(name)
    return site
