"""De-identify a file, a case folder or a dataset folder into a new output folder."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom

from aimd import __version__
from aimd.core.atomic import atomic_dir
from aimd.core.errors import InvalidInputError
from aimd.imaging.deid.discover import discover
from aimd.imaging.deid.mapping import DeidMap
from aimd.imaging.deid.profile import BASIC_PROFILE
from aimd.imaging.deid.report import build_log
from aimd.imaging.deid.runner.records import (
    LOG_NAME,
    STATIC_LOG_PARTS,
    WRITTEN_STATUSES,
    DeidOptions,
    DeidReport,
    check_paths,
)
from aimd.imaging.deid.runner.run import _Run


def deidentify_path(
    src: str | Path,
    dst: str | Path,
    map_path: str | Path,
    *,
    options: DeidOptions | None = None,
    salt: str | None = None,
    overwrite: bool = False,
    progress: Callable[[], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> DeidReport:
    """De-identify ``src`` (file, case folder or dataset folder) into ``dst``; extend ``map_path``.

    Parameters
    ----------
    src, dst, map_path:
        Input, output folder (built atomically) and pseudonym map file (must be outside ``dst``).
    options:
        Profile options and date-shift range; default from settings.
    salt:
        Secret for a new map (random if omitted); must match the salt of an existing map.
    overwrite:
        Replace a non-empty ``dst``.
    progress, on_total:
        Called once per processed file, and once with the number of files.

    Raises
    ------
    InvalidInputError
        Missing source, DST inside SRC, map inside DST, salt mismatch, non-empty DST without ``overwrite``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> work = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (work / "in").mkdir(), (work / "in" / "r.txt").write_text("姓名：张伟", encoding="utf-8")
    >>> deidentify_path(work / "in", work / "out", work / "map.json").exit_code
    0
    >>> (work / "out" / "r.txt").read_text(encoding="utf-8").startswith("姓名：[NAME-")
    True
    """
    started = time.time()
    src, dst, map_path = check_paths(Path(src), Path(dst), Path(map_path))
    options = options or DeidOptions.from_settings()
    mapping = DeidMap.open(map_path, salt)
    root, files = discover(src, exclude=(map_path,))
    if not files:
        raise InvalidInputError("no files found", where=str(src), hint="pass a file or a non-empty folder")
    if on_total is not None:
        on_total(len(files))
    run = _Run(src, dst, map_path, mapping, options, progress)
    with atomic_dir(dst, overwrite=overwrite) as tmp:
        run.run(files, tmp)
        residual = run.residual_scan(tmp)
        reports = [run.reports[f.rel] for f in files]
        log = build_log(
            reports=[r.to_json() for r in reports] + run.stray,
            options=options,
            mapping=mapping,
            residual=residual,
            started=started,
            versions=_versions(),
            profile_size=len(BASIC_PROFILE),
        )
        text = json.dumps(log, ensure_ascii=False, indent=2) + "\n"
        run.check_log(json.dumps({k: v for k, v in log.items() if k not in STATIC_LOG_PARTS}, ensure_ascii=False))
        (tmp / LOG_NAME).write_text(text, encoding="utf-8")
        mapping.record_run(
            src=str(src),
            dst=str(dst),
            aimd=__version__,
            files=len(files),
            failed=sum(r.status not in WRITTEN_STATUSES for r in reports),
            options=log["profile"]["options"],
        )
        mapping.save(map_path)
    return DeidReport(src, dst, map_path, reports, log)


def _versions() -> dict[str, str]:
    return {
        "aimd": __version__,
        "pydicom": pydicom.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
