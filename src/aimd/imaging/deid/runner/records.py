"""Options, per-file and run reports of ``aimd data deid``, and the checks of its three paths."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aimd.core.config import get_settings
from aimd.core.errors import InvalidInputError
from aimd.imaging.deid.profile import ProfileOptions

LOG_NAME = "deid_log.json"
# Parts of the log written from aimd's own constants (policy, rule descriptions, profile): no input reaches
# them, so the scan of the log covers the rest (files, paths, errors, reasons, counts).
STATIC_LOG_PARTS = frozenset({"policy", "text_rules", "profile", "clauses", "format", "date_shift"})


@dataclass(frozen=True)
class DeidOptions:
    """Options of one run: the profile options, the date-shift range and what to do with unknown files.

    Example
    -------
    >>> DeidOptions.from_settings().date_shift_max_days >= 1
    True
    """

    profile: ProfileOptions = ProfileOptions()
    date_shift_max_days: int = 365
    copy_unknown: bool = False
    clean_pixels: bool = False

    @classmethod
    def from_settings(cls, **overrides: Any) -> DeidOptions:
        """Defaults from ``settings.deid`` (``AIMD_DEID__*``), then ``overrides``."""
        deid = get_settings().deid
        keep = overrides.pop("keep_private_tags", None)
        profile = ProfileOptions(
            keep_private_tags=deid.keep_private_tags if keep is None else keep,
            clean_descriptors=overrides.pop("clean_descriptors", False),
            retain_modified_dates=not overrides.pop("remove_dates", False),
            retain_patient_characteristics=not overrides.pop("remove_characteristics", False),
        )
        return cls(profile=profile, date_shift_max_days=deid.date_shift_max_days, **overrides)


@dataclass
class FileReport:
    """Result for one input file (``path`` is the output path relative to DST; no original values)."""

    path: str
    kind: str
    status: str  # deidentified | copied | not handled | quarantined | skipped | failed
    rules: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "kind": self.kind, "status": self.status}
        if self.rules:
            out["rules"] = self.rules
        if self.details:
            out.update(self.details)
        if self.error:
            out["error"] = self.error
        return out


WRITTEN_STATUSES = frozenset({"deidentified", "copied"})


@dataclass
class DeidReport:
    """What a run did; ``exit_code`` is 1 when any file was not written (failed, not handled, quarantined,
    skipped), else 0."""

    src: Path
    dst: Path
    map_path: Path
    files: list[FileReport]
    log: dict[str, Any]

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.status == "failed"]

    @property
    def left_out(self) -> list[FileReport]:
        """Every file not written to DST (failed, not handled, quarantined, skipped)."""
        return [f for f in self.files if f.status not in WRITTEN_STATUSES]

    @property
    def warnings(self) -> list[tuple[str, str]]:
        """``(path, warning)`` for every per-file warning."""
        return [(f.path, w) for f in self.files for w in f.details.get("warnings", [])]

    @property
    def exit_code(self) -> int:
        return 1 if self.left_out or self.log.get("summary", {}).get("failed", 0) else 0

    def summary(self) -> dict[str, Any]:
        """Counts for the CLI (paths of DST, map and log; per-status and per-kind counts, files left out)."""
        failed = [{"path": f.path, "error": f.error} for f in self.failed]
        left_out = [
            {"path": f.path, "status": f.status, "reason": f.error or f.details.get("reason", "")}
            for f in self.left_out
        ]
        return {
            "dst": str(self.dst),
            "map": str(self.map_path),
            "log": str(self.dst / LOG_NAME),
            **self.log["summary"],
            "failed_files": failed,
            "left_out": left_out,
            "warning_list": [{"path": p, "warning": w} for p, w in self.warnings],
            "exit_code": self.exit_code,
        }


def check_paths(src: Path, dst: Path, map_path: Path) -> tuple[Path, Path, Path]:
    """Resolve and validate SRC, DST and MAPFILE; bad combinations are :class:`InvalidInputError`.

    Example
    -------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> try:
    ...     check_paths(root, root.parent / "out", root.parent / "out" / "map.json")
    ... except InvalidInputError as err:
    ...     print(err.message)
    the pseudonym map must not be stored inside the output (001 §11.2.1)
    """
    src, dst, map_path = Path(src).resolve(), Path(dst).resolve(), Path(map_path).resolve()
    if not src.exists():
        raise InvalidInputError("source not found", where=str(src), hint="pass an existing file or folder")
    if dst == src or src in dst.parents:
        raise InvalidInputError(
            "output folder is inside the source", where=str(dst), hint="write the de-identified copy outside SRC"
        )
    if dst in src.parents:
        raise InvalidInputError(
            "source is inside the output folder",
            where=str(src),
            hint="choose an output folder that does not contain SRC",
        )
    if map_path == dst or dst in map_path.parents:
        raise InvalidInputError(
            "the pseudonym map must not be stored inside the output (001 §11.2.1)",
            where=str(map_path),
            hint="put --map outside DST, e.g. next to the source",
        )
    if map_path.is_dir():
        raise InvalidInputError("--map is a folder", where=str(map_path), hint="pass a file path, e.g. map.json")
    return src, dst, map_path
