"""Server-side drafts of a task's vector objects and report-text marks (001 App. C, §8.5.2).

The workspace autosaves the mask through ``PUT /tasks/{id}/draft``; the rest of the annotator's work
(boxes, points and polygons, report spans and their links to findings, the attribute form) is autosaved
here the same way: ``PUT /api/v1/tasks/{id}/marks`` with ``If-Match: "<version>"``, a stale version is a
409, and ``GET`` gives it back so a reload or another browser resumes where the annotator left off.

One JSON file per task under ``<data>/marks/``, replaced atomically under a file lock; every save is
an audit entry with the content's SHA-256. Marks are checked before they are kept: vector objects are
the App. C shapes, spans lie inside the report and quote it, links name existing spans.
"""

import contextlib
import fcntl
import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from aimd.core.atomic import atomic_write_json
from aimd.core.errors import InvalidInputError
from aimd.platform import workflow
from aimd.platform.api.common import Deps
from aimd.platform.api.schemas import MarksOut, errors
from aimd.platform.models import Case, Project, Task
from aimd.platform.projects import ConflictError, require_unfrozen
from aimd.platform.workflow import PreconditionRequiredError

__all__ = ["MarksIn", "check_marks", "register"]

VECTOR_TYPES = ("bbox", "point", "polygon")
WORK_KINDS = ("annotate", "rework", "arbitrate")
_LOCK = threading.Lock()


class MarksIn(BaseModel):
    objects: list[dict[str, Any]] = Field(default_factory=list, max_length=2000)
    spans: list[dict[str, Any]] = Field(default_factory=list, max_length=2000)
    links: dict[str, list[str]] = Field(default_factory=dict)
    attributes: dict[str, dict[str, Any]] = Field(default_factory=dict)


def _bad(message: str, where: str, hint: str) -> InvalidInputError:
    return InvalidInputError(message, where=where, hint=hint)


def _check_object(i: int, o: dict[str, Any], shape: list[int]) -> None:
    where = f"objects[{i}]"
    kind = o.get("type")
    if kind not in VECTOR_TYPES or not isinstance(o.get("id"), str) or not isinstance(o.get("label_code"), str):
        raise _bad(f"needs id, label_code and type in {VECTOR_TYPES}", where, "draw it again")
    nz, ny, nx = shape[:3]

    def inside(x: Any, y: Any) -> bool:
        return isinstance(x, int) and isinstance(y, int) and 0 <= x < nx and 0 <= y < ny

    z = o.get("slice_index", o.get("point", [0, 0, 0])[2] if kind == "point" else None)
    if not isinstance(z, int) or not 0 <= z < nz:
        raise _bad(f"slice {z!r} is outside the image's {nz} slices", where, "draw on a shown slice")
    if kind == "bbox":
        b = o.get("bbox")
        ok = isinstance(b, list) and len(b) == 4 and inside(b[0], b[1]) and inside(b[2], b[3])
        if not ok or b[0] >= b[2] or b[1] >= b[3]:
            raise _bad(
                f"bbox {b!r} is not [x0, y0, x1, y1] inside the image with x0<x1, y0<y1", where, "draw the box again"
            )
    elif kind == "point":
        p = o.get("point")
        if not (isinstance(p, list) and len(p) == 3 and inside(p[0], p[1])):
            raise _bad(f"point {p!r} is not [x, y, z] inside the image", where, "click inside the image")
    else:
        poly = o.get("polygon")
        if not (isinstance(poly, list) and len(poly) >= 3 and all(isinstance(q, list) and len(q) == 2 for q in poly)):
            raise _bad("a polygon needs at least 3 [x, y] vertices", where, "close it after 3 clicks")
        if not all(inside(*q) for q in poly):
            raise _bad("a polygon vertex lies outside the image", where, "draw inside the image")


def check_marks(marks: MarksIn, report: str, shape: list[int]) -> None:
    """Refuse marks that could not be exported as App. C annotations (the error names the item).

    >>> check_marks(MarksIn(spans=[{"id": "s1", "start": 0, "end": 2, "text": "结节"}]), "结节影", [4, 8, 8])
    >>> check_marks(MarksIn(spans=[{"id": "s1", "start": 0, "end": 2, "text": "肿块"}]), "结节影", [4, 8, 8])
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    aimd.core.errors.InvalidInputError: spans[0]: the text '肿块' is not what the report holds at 0–2 ('结节') ...
    """
    for i, o in enumerate(marks.objects):
        _check_object(i, o, shape)
    ids = set()
    for i, s in enumerate(marks.spans):
        where = f"spans[{i}]"
        start, end = s.get("start"), s.get("end")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(report)):
            raise _bad(
                f"[{start}, {end}) is not inside the report's {len(report)} characters",
                where,
                "select the text in the report again",
            )
        if s.get("text") != report[start:end]:
            raise _bad(
                f"the text {s.get('text')!r} is not what the report holds at {start}–{end} ({report[start:end]!r})",
                where,
                "select the text in the report again",
            )
        ids.add(s.get("id"))
    linked = [x for v in marks.links.values() for x in v] + [x for o in marks.objects for x in o.get("links", [])]
    missing = sorted(set(linked) - ids)
    if missing:
        raise _bad(f"links name spans that do not exist: {missing}", "links", "link a span that is in 'spans'")


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with _LOCK, (folder / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"version": 0, "marks": MarksIn().model_dump()}
    return json.loads(path.read_text(encoding="utf-8"))


def register(app: FastAPI, d: Deps) -> None:
    """``GET`` / ``PUT /api/v1/tasks/{id}/marks``."""
    platform, Who = d.platform, d.Current
    folder = platform.data_dir / "marks"

    def answer(task_id: int, saved: dict[str, Any]) -> JSONResponse:
        body = {"task": task_id, "version": saved["version"], **saved["marks"]}
        return JSONResponse(body, headers={"ETag": f'"{saved["version"]}"'})

    @app.get("/api/v1/tasks/{task_id}/marks", tags=["tasks"], response_model=MarksOut)
    def get_marks(task_id: int, who: Who) -> JSONResponse:
        with platform.sessions() as db:
            workflow.get_task(db, who[0], task_id)
        return answer(task_id, _read(folder / f"task-{task_id}.json"))

    @app.put("/api/v1/tasks/{task_id}/marks", tags=["tasks"], response_model=MarksOut, responses=errors(428))
    def put_marks(
        task_id: int, body: MarksIn, who: Who, if_match: Annotated[str | None, Header()] = None
    ) -> JSONResponse:
        user = who[0]
        with platform.sessions() as db:
            task = workflow.get_task(db, user, task_id, kinds=WORK_KINDS)
            project, case = db.get(Project, task.project_id), db.get(Case, task.case_id)
            assert isinstance(task, Task) and project is not None and case is not None
            require_unfrozen(project)
            if task.status != "open":
                raise ConflictError(f"task {task.id} is {task.status}", where="task", hint="marks go to open tasks")
            check_marks(body, case.report_text or "", list(case.image["shape"]))
            if if_match is None:
                raise PreconditionRequiredError()
            expected = if_match.strip().removeprefix("W/").strip('"')
            path = folder / f"task-{task_id}.json"
            with _locked(folder):
                saved = _read(path)
                if expected != str(saved["version"]):
                    raise ConflictError(
                        f"stale marks: you sent version {expected}, the server has {saved['version']}",
                        where="If-Match",
                        hint="reload the task, merge your edits and save again",
                    )
                marks = body.model_dump()
                new = {"version": saved["version"] + 1, "marks": marks, "saved_by": user.username}
                atomic_write_json(path, new)
            digest = hashlib.sha256(json.dumps(marks, sort_keys=True).encode()).hexdigest()
            platform.audit.append(
                user.username,
                "marks.save",
                f"task:{task_id}",
                {"version": new["version"], "sha256": digest},
                connection=db,
            )
            db.commit()
        return answer(task_id, new)
