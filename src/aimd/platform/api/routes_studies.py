"""Route of the DICOM study import (001 §6.4.1, §10.1.1): ``POST /api/v1/projects/{p}/studies`` takes a
zip archive of a study's DICOM files (multipart ``file``) with the case key, optional primary series,
report text and clinical fields; the platform splits the series, checks them, imports the primary as the
case's image and registers the others onto it (:mod:`aimd.platform.series.study`)."""

import json
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, UploadFile
from pydantic import BaseModel, ValidationError

from aimd.platform import projects
from aimd.platform.api import schemas
from aimd.platform.api.common import Deps, Id
from aimd.platform.rbac import Permission
from aimd.platform.series.study import StudyError, StudyImport, import_study
from aimd.platform.series.unpack import StudyArchiveError

__all__ = ["MAX_UPLOAD_BYTES", "StudyOut", "register"]

MAX_UPLOAD_BYTES = 2 << 30
"""Largest study archive the route accepts (413 above)."""


class StudyOut(BaseModel):
    """The imported case, the primary series and why, and every series with its registration."""

    case: dict[str, Any]
    primary: str
    primary_rule: str
    series: list[dict[str, Any]]


def _fields(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as err:
        raise StudyError(
            f"fields is not JSON ({err.msg})", where="fields", hint='send a JSON object, e.g. {"age": 60}'
        ) from None
    if not isinstance(value, dict):
        raise StudyError("fields is not a JSON object", where="fields", hint='send a JSON object, e.g. {"age": 60}')
    return value


def register(app: FastAPI, d: Deps) -> None:
    platform, DB, need = d.platform, d.DB, d.need

    @app.post(
        "/api/v1/projects/{project_id}/studies",
        tags=["cases"],
        status_code=201,
        response_model=StudyOut,
        responses=schemas.errors(400, 413),
    )
    def import_dicom_study(
        project_id: Id,
        user: need(Permission.CASE_IMPORT),
        db: DB,
        file: Annotated[UploadFile, File(description="zip archive of the study's DICOM files")],
        case_key: Annotated[str, Form(min_length=1, max_length=200)],
        primary_series_uid: Annotated[str | None, Form(max_length=64)] = None,
        report_text: Annotated[str, Form(max_length=100_000)] = "",
        fields: Annotated[str, Form(max_length=100_000, description="clinical fields, a JSON object")] = "{}",
    ) -> dict[str, Any]:
        project = projects.get_project(db, user, project_id)
        data = file.file.read(MAX_UPLOAD_BYTES + 1)
        if len(data) > MAX_UPLOAD_BYTES:
            raise StudyArchiveError(
                f"the study archive is larger than {MAX_UPLOAD_BYTES} bytes",
                where="file",
                hint="import the study in parts, one case per archive",
                status=413,
            )
        try:
            spec = StudyImport(
                case_key=case_key,
                primary_series_uid=primary_series_uid or None,
                report_text=report_text,
                fields=_fields(fields),
            )
        except ValidationError as err:
            raise StudyError(str(err.errors()[0]["msg"]), where="study", hint="check the form fields") from None
        try:
            out = import_study(db, platform.audit, platform.blobs, user, project, spec, archive=data)
        except projects.IdentifiersFoundError:
            db.commit()  # the refusal is audited; nothing else was written
            raise
        db.commit()
        return out
