"""One de-identification run: every source file handled, scanned for residual identifiers and logged."""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pydicom

from aimd.core.errors import AimdError, InvalidInputError
from aimd.imaging.deid.dicom import (
    deidentify_dataset,
    mark_pixels_cleaned,
    read_dicom,
    register_patient,
    write_dicom,
)
from aimd.imaging.deid.discover import SourceFile, decode_text, encode_text
from aimd.imaging.deid.jsondoc import deidentify_json
from aimd.imaging.deid.mapping import DeidMap
from aimd.imaging.deid.nifti import check_analyze_pair, clean_nifti_bytes
from aimd.imaging.deid.pixels import burned_in_reason, clean_pixels
from aimd.imaging.deid.residual import ResidualScanner, originals_from_map
from aimd.imaging.deid.runner.names import _clean_name, _refresh, _unique
from aimd.imaging.deid.runner.records import LOG_NAME, WRITTEN_STATUSES, DeidOptions, FileReport
from aimd.imaging.deid.text import TextDeidentifier


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
