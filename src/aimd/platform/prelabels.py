"""Model-assisted labels (001 §6.4.2, §10.1.6): register a model, run it on a task's case, load its
labels as the task's draft with source ``model@version``; the submission later records the correction.

A model is either a file on the server, run through its :mod:`aimd.models.adapters` ``Predictor``, or a
model on a running ``aimd serve`` (the device service's KServe v2 API, :mod:`aimd.serving`): the case's
NIfTI goes to ``/v2/models/{name}/infer`` with the bearer token of ``platform.serve_token``, and the
returned mask file becomes the pre-label. Either way the model's SHA-256 is recorded at registration and
checked again before every run (a changed model must be registered as a new version).
"""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from numpy.typing import NDArray
from sqlalchemy.orm import Session

from aimd.core.config import PlatformSettings
from aimd.core.errors import AimdError, InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.platform.mask_store import MaskStore, store_npy
from aimd.platform.masks import parse_mask, to_npy
from aimd.platform.models import Case, ModelRecord, Project, Task, User
from aimd.platform.projects import ConflictError, require_unfrozen
from aimd.store import AuditLog, BlobStore

__all__ = ["ModelServiceError", "ModelServiceNotConfiguredError", "is_served", "prelabel", "register_model"]

_INFER_SECONDS = 900.0


class ModelServiceError(AimdError):
    """The model service could not be reached or refused the request (HTTP 502)."""


class ModelServiceNotConfiguredError(ConflictError):
    """The platform has no token for the model service: its own configuration, not an upstream failure
    (HTTP 409, with the fix for the administrator)."""


def is_served(path: str) -> bool:
    """True when a registered model lives on a model service (its path is an http(s) URL)."""
    return path.startswith(("http://", "https://"))


def _served_url(endpoint: str, served_model: str, served_version: str | None) -> str:
    if not is_served(endpoint) or not urlsplit(endpoint).hostname:
        raise InvalidInputError(
            f"not an http(s) URL: {endpoint!r}",
            where="endpoint",
            hint="give the aimd serve base URL, e.g. http://127.0.0.1:8500",
        )
    url = f"{endpoint.rstrip('/')}/v2/models/{served_model}"
    return f"{url}/versions/{served_version}" if served_version else url


def _call(settings: PlatformSettings, method: str, url: str, **kw: Any) -> Any:
    """One request to the model service with the platform's token; its errors become ModelServiceError."""
    import httpx

    token = settings.serve_token.get_secret_value() if settings.serve_token else None
    if token is None:
        raise ModelServiceNotConfiguredError(
            "no token for the model service is configured",
            where="platform.serve_token",
            hint="create one with `aimd serve token create --scope infer` and set AIMD_PLATFORM__SERVE_TOKEN",
        )
    try:
        r = httpx.request(method, url, headers={"Authorization": f"Bearer {token}", **kw.pop("headers", {})}, **kw)
    except httpx.HTTPError as err:
        raise ModelServiceError(
            f"the model service is not reachable ({err})", where=url, hint="start aimd serve or fix the endpoint"
        ) from None
    if r.status_code >= 400:
        try:
            said = r.json().get("message") or r.text[:300]
        except ValueError:
            said = r.text[:300]
        raise ModelServiceError(
            f"the model service answered {r.status_code}: {said}",
            where=url,
            hint="check the token's scope (infer), the model name and the service log",
        )
    return r


def register_model(
    db: Session,
    audit: AuditLog,
    settings: PlatformSettings,
    user: User,
    *,
    name: str,
    version: str,
    path: str | None,
    parameters: dict[str, Any],
    label_values: dict[str, int],
    endpoint: str | None = None,
    served_model: str | None = None,
    served_version: str | None = None,
) -> ModelRecord:
    """Register a model for pre-labels: name, version, file hash (from the service for a served model),
    inference parameters (§10.1.6)."""
    if (path is None) == (endpoint is None):
        raise InvalidInputError(
            "give either path (a model file on the server) or endpoint (an aimd serve URL)",
            where="path / endpoint",
            hint="send exactly one of them",
        )
    if endpoint is not None:
        url = _served_url(endpoint, served_model or name, served_version)
        meta = _call(settings, "GET", url, timeout=60).json()
        where, sha = url, str(meta.get("sha256") or "")
        parameters = {**parameters, "service": {"model": meta.get("name"), "version": meta.get("version")}}
        if len(sha) != 64:
            raise ModelServiceError(
                "the model service gave no SHA-256 for the model", where=url, hint="update aimd serve"
            )
    else:
        file = Path(str(path))
        if not file.is_file():
            raise InvalidInputError(
                "model file not found on the server", where=str(path), hint="pass a server-side path"
            )
        where, sha = str(file.resolve()), sha256_file(file)
    rec = ModelRecord(
        name=name,
        version=version,
        path=where,
        file_sha256=sha,
        parameters=parameters,
        label_values=label_values,
        registered_by=user.username,
    )
    db.add(rec)
    db.flush()
    audit.append(
        user.username,
        "model.register",
        f"model:{rec.id}",
        {"name": name, "version": version, "sha256": rec.file_sha256, "parameters": parameters, "path": where},
        connection=db,
    )
    return rec


def _project_mask(labels: NDArray[Any], model: ModelRecord) -> NDArray[Any]:
    mask = np.zeros(labels.shape, np.uint8)
    for out_value, mask_value in model.label_values.items():
        mask[labels == int(out_value)] = int(mask_value)
    return mask


def _from_file(blobs: BlobStore, case: Case, model: ModelRecord) -> tuple[NDArray[Any], dict[str, Any]]:
    from aimd.models.adapters import load_predictor
    from aimd.platform.workflow import case_volume

    if sha256_file(model.path) != model.file_sha256:
        raise InvalidInputError(
            "the model file changed since it was registered",
            where=model.path,
            hint="register the new file as a new version",
        )
    predictor = load_predictor(model.path)
    return np.asarray(predictor.predict_volume(case_volume(blobs, case)).labels.array), {}


def _from_service(
    settings: PlatformSettings, blobs: BlobStore, case: Case, model: ModelRecord
) -> tuple[NDArray[Any], dict[str, Any]]:
    from aimd.imaging.nifti_io import read_nifti

    meta = _call(settings, "GET", model.path, timeout=60).json()
    if meta.get("sha256") != model.file_sha256:
        raise InvalidInputError(
            "the served model changed since it was registered",
            where=model.path,
            hint="register the service's current model as a new version",
        )
    raw = blobs.get(case.image["nifti_sha256"])
    body = raw if raw[:2] == b"\x1f\x8b" else gzip.compress(raw)
    doc = _call(
        settings,
        "POST",
        f"{model.path}/infer",
        content=body,
        headers={"Content-Type": "application/gzip"},
        timeout=_INFER_SECONDS,
    ).json()
    link = (doc.get("links") or {}).get("mask_nifti")
    if not link:
        raise ModelServiceError(
            "the model service returned no mask", where=model.path, hint="register a segmentation model"
        )
    base = model.path.split("/v2/", 1)[0]
    data = _call(settings, "GET", f"{base}{link}", timeout=120).content
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mask.nii.gz"
        path.write_bytes(data)
        labels = np.asarray(read_nifti(path).array)
    return labels, {"service_result": doc.get("id"), "service_model": doc.get("model")}


def prelabel(
    db: Session,
    audit: AuditLog,
    blobs: MaskStore,
    settings: PlatformSettings,
    user: User,
    task: Task,
    model: ModelRecord,
) -> Task:
    """Run the model on the task's case and load its labels as the draft (source ``model@version``)."""
    project = db.get(Project, task.project_id)
    case = db.get(Case, task.case_id)
    assert project is not None and case is not None
    require_unfrozen(project)
    shape, allowed, version = case.image["shape"], {int(k) for k in project.label_map}, task.draft_version
    db.commit()  # end the read: inference must not hold the database
    if is_served(model.path):
        labels, detail = _from_service(settings, blobs, case, model)
    else:
        labels, detail = _from_file(blobs, case, model)
    mask = _project_mask(labels, model)
    raw = to_npy(mask)
    parse_mask(raw, shape=shape, allowed=allowed)
    sha = store_npy(blobs, raw)  # slabs and a manifest, like a saved draft
    source = f"{model.name}@{model.version}"
    from aimd.platform.workflow import advance_draft

    # a save that landed while the model ran wins: the pre-label is refused, not written over it
    if not advance_draft(db, task, version, sha, source, prelabel=True):
        raise ConflictError(
            "the draft changed while the model ran",
            where="task",
            hint="reload the draft and ask for the pre-label again",
        )
    audit.append(
        user.username,
        "prelabel",
        f"task:{task.id}",
        {
            "model": source,
            "model_sha256": model.file_sha256,
            "mask_sha256": sha,
            "parameters": model.parameters,
            **detail,
        },
        connection=db,
    )
    return task
