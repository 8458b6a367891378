"""``aimd data deid``: de-identify a file, a case folder or a dataset folder (001 §7.3, §11.2).

The output keeps the folder structure. DICOM files get the PS3.15 Basic Profile, report text and JSON
the text rules (JSON spans moved), NIfTI headers are cleaned, numeric arrays and Analyze voxel files are
checked and copied, and anything that cannot be parsed or checked is reported as "not handled" and left
out; symbolic links are never followed. Images that may hold burned-in text are quarantined (left out,
reason logged) unless ``clean_pixels`` blanks the text and OCR finds none left. Every written byte is then
searched by the independent residual scan (:mod:`aimd.imaging.deid.residual`); a file with a hit is
removed and reported. Any file not written makes the exit code 1. The output is built
in a temporary folder and renamed into place; the pseudonym map is written (atomically, mode 0600) to a
path outside the output; ``deid_log.json`` in the output records the rules, options, tool versions and
per-file results, never an original identifier.

Example
-------
>>> import tempfile, pathlib, shutil
>>> from pydicom.data import get_testdata_file
>>> work = pathlib.Path(tempfile.mkdtemp())
>>> _ = shutil.copy(get_testdata_file("CT_small.dcm"), work / "in.dcm")
>>> report = deidentify_path(work / "in.dcm", work / "out", work / "map.json", salt="k")
>>> report.exit_code, sorted(p.name for p in (work / "out").iterdir())
(0, ['deid_log.json', 'in.dcm'])
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from aimd import __version__
from aimd.core.atomic import atomic_dir
from aimd.core.config import get_settings
from aimd.core.errors import AimdError, InvalidInputError
from aimd.core.hashing import sha256_file
from aimd.imaging.deid.dicom import (
    deidentify_dataset,
    mark_pixels_cleaned,
    read_dicom,
    register_patient,
    write_dicom,
)
from aimd.imaging.deid.discover import SourceFile, decode_text, discover, encode_text
from aimd.imaging.deid.jsondoc import deidentify_json
from aimd.imaging.deid.mapping import DeidMap
from aimd.imaging.deid.nifti import check_analyze_pair, clean_nifti_bytes
from aimd.imaging.deid.pixels import burned_in_reason, clean_pixels
from aimd.imaging.deid.profile import BASIC_PROFILE, ProfileOptions
from aimd.imaging.deid.report import build_log
from aimd.imaging.deid.residual import ResidualScanner, originals_from_map
from aimd.imaging.deid.text import TextDeidentifier

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


class _Run:
    def __init__(
        self,
        src: Path,
        dst: Path,
        map_path: Path,
        mapping: DeidMap,
        options: DeidOptions,
        progress: Callable[[], None] | None,
    ) -> None:
        self.src, self.dst, self.map_path = src, dst, map_path
        self.mapping, self.options = mapping, options
        self.progress = progress or (lambda: None)
        self.reports: dict[Path, FileReport] = {}
        self.written: dict[Path, tuple[Path, str]] = {}  # rel -> (output rel, kind)
        self.dir_keys: dict[Path, set[str]] = {}
        self.owner: dict[str, str] = {}
        self.engines: dict[str, TextDeidentifier] = {}
        self.owner_finder: TextDeidentifier | None = None
        self.warnings: list[str] = []
        self.scanner: ResidualScanner | None = None
        self.stray: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ phases
    def run(self, files: list[SourceFile], tmp: Path) -> None:
        for f in files:
            if f.kind == "dicom":
                self._dicom(f, tmp)
        self.owner = {
            v.casefold(): key
            for key, entry in self.mapping.patients.items()
            for values in entry.identifiers.values()
            for v in values
        }
        prescan = TextDeidentifier(self.mapping)
        for f in files:  # pre-scan: names/numbers found anywhere become known everywhere
            if f.kind in ("text", "json"):
                self._prescan(f, prescan)
        self.mapping.known_lookup()  # every identifier is known now: engines share this lookup
        for f in files:
            if f.kind == "dicom":
                continue
            handler = {
                "text": self._text,
                "json": self._json,
                "nifti": self._nifti,
                "analyze": self._analyze,
                "npy": self._npy,
                "unknown": self._unknown,
                "skip": self._skip,
                "link": self._link,
            }[f.kind]
            handler(f, tmp)
        self._rename_identifying_paths(tmp)
        self._refresh_hashes(tmp)

    def _fail(self, f: SourceFile, kind: str, err: Exception, tmp: Path) -> None:
        out = tmp / f.rel
        if out.exists():
            out.unlink()
        message = err.message if isinstance(err, AimdError) else f"{type(err).__name__}: {err}"
        message = message.replace(str(f.path), f.rel.as_posix())
        scrub = TextDeidentifier(self.mapping, date_offset_days=0)
        self.reports[f.rel] = FileReport(f.rel.as_posix(), kind, "not handled", error=scrub.deidentify(message).text)
        self.progress()

    def _done(
        self, f: SourceFile, kind: str, status: str, tmp: Path, rules: dict[str, int] | None = None, **details: Any
    ) -> None:
        self.reports[f.rel] = FileReport(
            f.rel.as_posix(), kind, status, dict(sorted((rules or {}).items())), {k: v for k, v in details.items() if v}
        )
        if status in ("deidentified", "copied"):
            self.written[f.rel] = (f.rel, kind)
        self.progress()

    def _dicom(self, f: SourceFile, tmp: Path) -> None:
        max_days = self.options.date_shift_max_days
        try:
            ds = read_dicom(f.path)
            reason = burned_in_reason(ds)
            cleaned = None
            if reason is not None:
                patient = register_patient(ds, self.mapping, max_shift_days=max_days)
                self._remember_patient(f, patient.key)
                if not self.options.clean_pixels:
                    self._done(
                        f,
                        "dicom",
                        "quarantined",
                        tmp,
                        reason=f"needs review: {reason}; burned-in text is not cleaned "
                        "(use --clean-pixels, or check the images and set BurnedInAnnotation)",
                    )
                    return
                cleaned = clean_pixels(ds, where=f.rel.as_posix())
                if not cleaned.clean:
                    self._done(
                        f,
                        "dicom",
                        "quarantined",
                        tmp,
                        reason=f"needs review: {reason}; {cleaned.reason}",
                        pixel_cleaning=cleaned.to_json(),
                    )
                    return
            result = deidentify_dataset(ds, self.mapping, self.options.profile, max_shift_days=max_days)
            if cleaned is not None:
                mark_pixels_cleaned(ds)
            write_dicom(ds, tmp / f.rel)
        except Exception as err:
            self._harvest(f)
            self._fail(f, "dicom", err, tmp)
            return
        self._remember_patient(f, result.patient_key)
        info = result.to_json()
        if cleaned is not None:
            info["pixel_cleaning"] = cleaned.to_json()
        self._done(f, "dicom", "deidentified", tmp, dict(info.pop("text_rules")), **info)

    def _harvest(self, f: SourceFile) -> None:
        """Learn the identifiers of a DICOM file that cannot be handled, so they are found elsewhere."""
        try:
            ds = pydicom.dcmread(f.path, force=True, stop_before_pixels=True)
            if "PatientID" in ds or "PatientName" in ds:
                register_patient(ds, self.mapping, max_shift_days=self.options.date_shift_max_days)
        except Exception:
            return

    def _remember_patient(self, f: SourceFile, key: str) -> None:
        for parent in f.rel.parents:
            self.dir_keys.setdefault(parent, set()).add(key)

    def _context(self, f: SourceFile, text: str) -> tuple[str | None, str]:
        for parent in f.rel.parents:
            keys = self.dir_keys.get(parent, set())
            if len(keys) == 1:
                return next(iter(keys)), "dicom in folder"
            if len(keys) > 1:
                break
        owners = set()
        if text and self.owner:
            if self.owner_finder is None:
                self.owner_finder = TextDeidentifier(self.mapping, known=[(v, "", "ID") for v in self.owner], rules=())
            owners = {
                self.owner[r.original.casefold()]
                for r in self.owner_finder.find(text)
                if r.original.casefold() in self.owner
            }
        if len(owners) == 1:
            return next(iter(owners)), "identifier in text"
        return None, "none (dataset-level date offset)"

    def _engine(self, key: str | None) -> TextDeidentifier:
        name = key or "__dataset__"
        if name not in self.engines:
            max_days = self.options.date_shift_max_days
            offset = (
                self.mapping.patient(key, max_shift_days=max_days).date_offset_days
                if key
                else self.mapping.default_offset(max_shift_days=max_days)
            )
            self.engines[name] = TextDeidentifier(
                self.mapping, date_offset_days=offset, shift_dates=self.options.profile.retain_modified_dates
            )
        return self.engines[name]

    def _read_text(self, f: SourceFile) -> tuple[str, str]:
        return decode_text(f.path.read_bytes())

    def _prescan(self, f: SourceFile, engine: TextDeidentifier) -> None:
        try:
            text, _ = self._read_text(f)
            if f.kind == "json":
                deidentify_json(json.loads(text), engine)
            else:
                engine.deidentify(text)
        except (ValueError, UnicodeDecodeError, OSError):
            return  # reported when the file is processed

    def _text(self, f: SourceFile, tmp: Path) -> None:
        try:
            text, encoding = self._read_text(f)
        except (ValueError, UnicodeDecodeError) as err:
            self._fail(f, "text", InvalidInputError(f"undecodable text ({type(err).__name__})"), tmp)
            return
        key, how = self._context(f, text)
        out = self._engine(key).deidentify(text)
        target = tmp / f.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if out.changed:
            target.write_bytes(encode_text(out.text, encoding))
        else:
            shutil.copyfile(f.path, target)
        self._done(
            f,
            "text",
            "deidentified" if out.changed else "copied",
            tmp,
            out.counts,
            encoding=encoding,
            patient_context=how,
        )

    def _json(self, f: SourceFile, tmp: Path) -> None:
        try:
            text, encoding = self._read_text(f)
            doc = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            self._fail(f, "json", InvalidInputError(f"unparseable JSON ({type(err).__name__})"), tmp)
            return
        if isinstance(doc, dict) and doc.get("aimd_deid_map"):
            self._done(f, "json", "skipped", tmp, reason="pseudonym map: never copied into the output")
            return
        key, how = self._context(f, text)
        out = deidentify_json(doc, self._engine(key))
        target = tmp / f.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if out.changed:
            dumped = json.dumps(out.doc, ensure_ascii=False, indent=2) + "\n"
            target.write_bytes(encode_text(dumped, encoding))
        else:
            shutil.copyfile(f.path, target)
        self._done(
            f,
            "json",
            "deidentified" if out.changed else "copied",
            tmp,
            dict(out.counts),
            patient_context=how,
            spans_moved=out.spans_moved,
            span_overlaps=out.span_overlaps,
        )

    def _nifti(self, f: SourceFile, tmp: Path) -> None:
        engine = self._engine(self._context(f, "")[0])
        try:
            data, info = clean_nifti_bytes(
                f.path.read_bytes(),
                lambda s: engine.deidentify(s).text,
                where=f.rel.as_posix(),
                detached_header=f.rel.suffix == ".hdr",
            )
        except Exception as err:
            self._fail(f, "nifti", err, tmp)
            return
        target = tmp / f.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        changed = bool(info["fields_blanked"] or info["extensions_removed"])
        self._done(f, "nifti", "deidentified" if changed else "copied", tmp, **info)

    def _copy(self, f: SourceFile, tmp: Path, kind: str = "copy") -> None:
        target = tmp / f.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f.path, target)
        self._done(f, kind, "copied", tmp)

    def _analyze(self, f: SourceFile, tmp: Path) -> None:
        """An ``.img`` holds voxels only: written when its ``.hdr`` is beside it and the sizes agree."""
        try:
            check_analyze_pair(f.path, where=f.rel.as_posix())
        except Exception as err:
            self._fail(f, "analyze", err, tmp)
            return
        self._copy(f, tmp, "analyze")

    def _link(self, f: SourceFile, tmp: Path) -> None:
        self._done(f, "link", "not handled", tmp, reason=f.reason)

    def _npy(self, f: SourceFile, tmp: Path) -> None:
        try:
            array = np.load(f.path, mmap_mode="r", allow_pickle=False)
        except Exception as err:
            self._fail(f, "npy", InvalidInputError(f"unreadable .npy array ({type(err).__name__})"), tmp)
            return
        if array.dtype.kind not in "biufc":
            self._done(f, "npy", "not handled", tmp, reason=f"array of {array.dtype} may hold text")
            return
        self._copy(f, tmp, "npy")

    def _unknown(self, f: SourceFile, tmp: Path) -> None:
        if self.options.copy_unknown:
            self._copy(f, tmp)
            self.reports[f.rel].details["warnings"] = ["copied unchecked (--copy-unknown)"]
        else:
            self._done(f, "unknown", "not handled", tmp, reason=f.reason)

    def _skip(self, f: SourceFile, tmp: Path) -> None:
        self._done(f, "skip", "skipped", tmp, reason=f.reason)

    # ------------------------------------------------------------------ finishing
    def _rename_identifying_paths(self, tmp: Path) -> None:
        """Replace identifiers in file and folder names (known values, pinyin spellings, the text rules)."""
        engine = TextDeidentifier(
            self.mapping,
            date_offset_days=self._engine(None).offset,
            shift_dates=self.options.profile.retain_modified_dates,
        )
        cache: dict[str, str] = {}

        def clean(part: str) -> str:
            if part not in cache:
                cache[part] = _clean_name(part, engine)
            return cache[part]

        taken: set[str] = set()
        for rel, (out_rel, kind) in list(self.written.items()):
            new_rel = Path(*[clean(part) for part in out_rel.parts])
            if new_rel != out_rel:
                new_rel = _unique(new_rel, taken, tmp)
                (tmp / new_rel).parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp / out_rel, tmp / new_rel)
                self.written[rel] = (new_rel, kind)
                self.reports[rel].path = new_rel.as_posix()
                self.reports[rel].details["renamed"] = "path held an identifier"
            taken.add(new_rel.as_posix())
        for rel, report in self.reports.items():
            if rel not in self.written:
                report.path = Path(*[clean(p) for p in Path(report.path).parts]).as_posix()
        for folder in sorted((p for p in tmp.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(folder.iterdir()):
                folder.rmdir()

    def _refresh_hashes(self, tmp: Path) -> None:
        """Update ``{"path", "sha256", "bytes"|"size"}`` entries of written JSON files to the new files."""
        renamed = {old.as_posix(): new.as_posix() for old, (new, _) in self.written.items()}
        for rel, (out_rel, kind) in self.written.items():
            if kind != "json":
                continue
            target = tmp / out_rel
            doc = json.loads(target.read_text(encoding="utf-8-sig"))
            if _refresh(doc, tmp, target.parent, renamed):
                target.write_text(json.dumps(doc, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
                self.reports[rel].details["hashes_refreshed"] = True
                if self.reports[rel].status == "copied":
                    self.reports[rel].status = "deidentified"

    def residual_scan(self, tmp: Path) -> dict[str, Any]:
        """Run the independent scan over every byte and name written to ``tmp``; remove files with hits."""
        started = time.perf_counter()
        scanner = ResidualScanner(originals_from_map(self.mapping))
        self.scanner = scanner
        by_output = {out.as_posix(): rel for rel, (out, _) in self.written.items()}
        hits_total = scanned = 0
        for path in sorted(p for p in tmp.rglob("*") if p.is_file() or p.is_symlink()):
            out_rel = path.relative_to(tmp).as_posix()
            scanned += 1
            hits = set(scanner.scan_name(out_rel)) | set(scanner.scan_file(path) if path.is_file() else ["LINK"])
            if not hits:
                continue
            hits_total += 1
            path.unlink()
            rel = by_output.get(out_rel)
            if rel is None:  # not written by a handler: never expected, never kept
                self.stray.append(
                    {
                        "path": "[withheld]",
                        "status": "failed",
                        "error": f"unexpected output file with {', '.join(sorted(hits))}; removed",
                    }
                )
                continue
            del self.written[rel]
            report = self.reports[rel]
            report.status = "failed"
            named = scanner.scan_name(out_rel)
            if named:
                report.path = f"[path withheld: {', '.join(named)}]"
            report.error = f"residual identifier after de-identification ({', '.join(sorted(hits))}); file removed"
        for folder in sorted((p for p in tmp.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            if not any(folder.iterdir()):
                folder.rmdir()
        for report in self.reports.values():  # names of files left out reach the log: check them too
            if report.status not in WRITTEN_STATUSES and scanner.scan_name(report.path):
                report.path = f"[path withheld: {', '.join(scanner.scan_name(report.path))}]"
        paths = sorted(out.as_posix() for out, _ in self.written.values())
        sample = random.Random(len(paths)).sample(paths, k=min(5, len(paths)))
        return {
            "method": "independent byte scan (Aho-Corasick over raw and inflated bytes, names, PHI patterns)",
            "files_scanned": scanned,
            "identifiers_searched": len(originals_from_map(self.mapping)),
            "spellings_searched": scanner.size,
            "identifiers_too_short_to_search": scanner.too_short,
            "files_with_hits": hits_total,
            "seconds": round(time.perf_counter() - started, 3),
            "manual_review_sample": sorted(sample),
        }

    def check_log(self, text: str) -> None:
        """The log itself is output: refuse to write one whose input-derived parts hold an identifier."""
        hits = self.scanner.scan_bytes(text.encode("utf-8")) if self.scanner is not None else []
        if hits:
            raise AimdError(
                f"the de-identification log would hold an identifier ({', '.join(hits)})",
                where=LOG_NAME,
                hint="report this file set; nothing was written",
            )


_NAME_SUFFIX = re.compile(r"(?:\.[A-Za-z][A-Za-z0-9]{0,4})+$")
_NAME_SEPARATORS = re.compile(r"[_.\-]+")


def _clean_name(part: str, engine: TextDeidentifier) -> str:
    """One file or folder name with identifiers replaced; ``_``/``-``/``.`` are read as spaces."""
    suffix = _NAME_SUFFIX.search(part)
    stem, ext = (part[: suffix.start()], suffix.group(0)) if suffix and suffix.start() > 0 else (part, "")
    direct = engine.deidentify(stem)
    spaced = _NAME_SEPARATORS.sub(" ", stem)
    loose = engine.deidentify(spaced) if spaced != stem else direct
    if loose.changed and (not direct.changed or len(loose.replacements) > len(direct.replacements)):
        new_stem = loose.text.replace(" ", "_")
    else:
        new_stem = direct.text
    return (new_stem or "file") + ext if new_stem != stem else part


def _unique(rel: Path, taken: set[str], tmp: Path) -> Path:
    candidate, n = rel, 2
    while candidate.as_posix() in taken or (tmp / candidate).exists():
        suffix = _NAME_SUFFIX.search(rel.name)
        stem, ext = (rel.name[: suffix.start()], suffix.group(0)) if suffix and suffix.start() > 0 else (rel.name, "")
        candidate = rel.with_name(f"{stem}_{n}{ext}")
        n += 1
    return candidate


def _refresh(node: Any, root: Path, here: Path, renamed: dict[str, str]) -> bool:
    changed = False
    if isinstance(node, dict):
        path = node.get("path") or node.get("file")
        if isinstance(path, str) and isinstance(node.get("sha256"), str):
            path = renamed.get(path, path)
            for base in (here, root):
                candidate = base / path
                if candidate.is_file() and root in candidate.resolve().parents:
                    new_hash, size = sha256_file(candidate), candidate.stat().st_size
                    if node["sha256"] != new_hash:
                        node["sha256"] = new_hash
                        changed = True
                    for size_key in ("bytes", "size", "size_bytes"):
                        if size_key in node and node[size_key] != size:
                            node[size_key] = size
                            changed = True
                    if node.get("path") != path and "path" in node:
                        node["path"] = path
                        changed = True
                    break
        for value in node.values():
            changed |= _refresh(value, root, here, renamed)
    elif isinstance(node, list):
        for value in node:
            changed |= _refresh(value, root, here, renamed)
    return changed


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


__all__ = ["LOG_NAME", "DeidOptions", "DeidReport", "FileReport", "check_paths", "deidentify_path"]
