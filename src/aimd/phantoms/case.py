"""One multimodal phantom case: CT + labels + lesions + DRR + reports + clinical fields.

:func:`build_case` draws everything from a per-case seed (master seed + case index), so a case is
the same whichever worker builds it; :func:`write_case` writes the case folder of the dataset
layout (001 §6.6.1: images, structured annotation files and text kept side by side).

Example
-------
>>> import tempfile, pathlib
>>> from aimd.phantoms.sites import SITE_PROFILES
>>> case = build_case("case_0001", 0, seed=7, size=32, site=SITE_PROFILES[0])
>>> case.ct.shape, case.ct.dtype.name
((32, 32, 32), 'int16')
>>> files = write_case(case, pathlib.Path(tempfile.mkdtemp()) / "case_0001")
>>> "ct.nii.gz" in files and "dx.dcm" in files
True
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aimd.core.ids import deterministic_uid
from aimd.imaging.dicom_write import DicomMeta, write_dicom_image, write_dicom_series
from aimd.phantoms.anatomy import Anatomy, Grid, add_scanner_noise, make_grid, render_anatomy, sample_anatomy
from aimd.phantoms.clinical import sample_clinical
from aimd.phantoms.files import json_bytes, nifti_gz_bytes, write_bytes
from aimd.phantoms.identity import Person, sample_person, sample_staff_name
from aimd.phantoms.lesions import Lesion, lesion_records, place_lesions, render_lesions
from aimd.phantoms.radiograph import Radiograph, dx_boxes, render_drr
from aimd.phantoms.report import ReportContext, build_report
from aimd.phantoms.sites import SiteProfile

_FIRST_SCAN = datetime.date(2022, 1, 1)
_SCAN_DAYS = 3 * 365


@dataclass
class PhantomCase:
    """A generated case held in memory."""

    case_id: str
    index: int
    seed: int
    site: SiteProfile
    grid: Grid
    anatomy: Anatomy
    ct: NDArray[np.int16]
    labels: NDArray[np.uint8]
    instances: NDArray[np.uint8]
    lesions: list[Lesion]
    drr: Radiograph
    person: Person
    scan_date: datetime.date
    scan_time: str
    accession: str
    study_uid: str
    uid_seed: str
    reports: dict[str, dict[str, Any]]
    clinical: dict[str, Any]
    referring: tuple[str, str]


def case_rngs(seed: int, index: int, streams: int = 6) -> list[np.random.Generator]:
    """Independent generators for one case, derived from the master seed and the case index."""
    children = np.random.SeedSequence(entropy=seed, spawn_key=(index,)).spawn(streams)
    return [np.random.default_rng(child) for child in children]


def build_case(case_id: str, index: int, *, seed: int, size: int, site: SiteProfile) -> PhantomCase:
    """Generate case ``index`` of the dataset with master ``seed`` on a ``size``³ grid at ``site``."""
    r_geo, r_lesion, r_noise, r_person, r_clinical, r_drr = case_rngs(seed, index)
    grid = make_grid(size, site, r_geo)
    anatomy = sample_anatomy(r_geo)
    hu, labels = render_anatomy(grid, anatomy, r_geo)
    lesions = place_lesions(grid, anatomy, labels, r_lesion)
    instances = render_lesions(grid, lesions, hu, labels, r_lesion)
    ct = add_scanner_noise(hu, site.noise_hu, site.hu_offset, r_noise)
    drr = render_drr(ct, grid, r_drr, site.dx_photons)

    scan_date = _FIRST_SCAN + datetime.timedelta(days=int(r_person.integers(_SCAN_DAYS)))
    seconds_of_day = int(r_person.integers(8 * 3600, 18 * 3600))
    scan_time = f"{seconds_of_day // 3600:02d}{seconds_of_day // 60 % 60:02d}{seconds_of_day % 60:02d}"
    person = sample_person(r_person, scan_date, site.city_zh)
    accession = f"CT{scan_date:%Y%m%d}{int(r_person.integers(10**4)):04d}"
    report_date = scan_date + datetime.timedelta(days=int(r_person.integers(0, 3)))
    radiologist, reviewer, referring = (sample_staff_name(r_person) for _ in range(3))
    uid_seed = f"aimd-phantom:{seed}:{case_id}"
    study_uid = deterministic_uid(uid_seed, "study")
    ctx = ReportContext(person, site, scan_date, report_date, accession, radiologist, reviewer)
    reports = {lang: build_report(lang, ctx, lesions) for lang in ("zh", "en")}
    keys = {
        "case_id": case_id,
        "patient_id": person.record_number,
        "study_instance_uid": study_uid,
        "accession_number": accession,
        "scan_date": scan_date.isoformat(),
    }
    clinical = sample_clinical(r_clinical, person, scan_date, lesions, keys)
    return PhantomCase(
        case_id,
        index,
        seed,
        site,
        grid,
        anatomy,
        ct,
        labels,
        instances,
        lesions,
        drr,
        person,
        scan_date,
        scan_time,
        accession,
        study_uid,
        uid_seed,
        reports,
        clinical,
        referring,
    )


def dicom_meta(case: PhantomCase, series_number: int) -> DicomMeta:
    """Header attributes shared by the CT series (1) and the radiograph (2) of ``case``."""
    p, site = case.person, case.site
    surname, given = case.referring[1].split(" ", 1)[1], case.referring[1].split(" ", 1)[0]
    return DicomMeta(
        patient_name=p.dicom_name,
        patient_id=p.record_number,
        patient_birth_date=f"{p.birth_date:%Y%m%d}",
        patient_sex=p.sex,
        patient_age=f"{p.age:03d}Y",
        study_instance_uid=case.study_uid,
        study_date=f"{case.scan_date:%Y%m%d}",
        study_time=case.scan_time,
        study_description="CT CHEST AND UPPER ABDOMEN",
        study_id=str(case.index + 1),
        accession_number=case.accession,
        series_number=series_number,
        series_description=(f"AXIAL {site.slice_mm:g}MM" if series_number == 1 else "DRR AP CHEST"),
        institution_name=site.institution_en,
        manufacturer=site.manufacturer,
        manufacturer_model_name=site.model,
        station_name=site.station,
        referring_physician_name=f"{surname.upper()}^{given.upper()}",
        body_part_examined="CHEST",
        kvp=site.kvp,
        uid_seed=case.uid_seed,
        window_center=40.0 if series_number == 1 else None,
        window_width=400.0 if series_number == 1 else None,
    )


def write_case(case: PhantomCase, case_dir: Path) -> list[str]:
    """Write the case folder; return the written files relative to ``case_dir`` (sorted, POSIX)."""
    ct_volume = case.grid.volume(case.ct, modality="CT")
    write_dicom_series(ct_volume, case_dir / "ct", meta=dicom_meta(case, 1), fsync=False)
    write_bytes(case_dir / "ct.nii.gz", nifti_gz_bytes(ct_volume, "aimd phantom CT (HU)"))
    write_bytes(case_dir / "labels.nii.gz", nifti_gz_bytes(case.grid.volume(case.labels, None), "aimd labels"))
    write_bytes(
        case_dir / "lesions.nii.gz", nifti_gz_bytes(case.grid.volume(case.instances, None), "aimd lesion instances")
    )
    row_sp, col_sp = case.drr.pixel_spacing
    write_dicom_image(
        case.drr.image,
        case_dir / "dx.dcm",
        pixel_spacing=(row_sp, col_sp),
        meta=dicom_meta(case, 2),
        modality="DX",
        view_position="AP",
    )
    write_bytes(
        case_dir / "dx_boxes.json", json_bytes({"case_id": case.case_id, **dx_boxes(case.drr, case.grid, case.lesions)})
    )
    records = lesion_records(case.grid, case.lesions, case.instances, case.ct)
    write_bytes(case_dir / "lesions.json", json_bytes({"case_id": case.case_id, "lesions": records}))
    for lang in ("zh", "en"):
        write_bytes(case_dir / f"report_{lang}.txt", case.reports[lang]["text"].encode("utf-8"))
    write_bytes(case_dir / "report.json", json_bytes({"case_id": case.case_id, **case.reports}))
    write_bytes(case_dir / "clinical.json", json_bytes(case.clinical))
    return sorted(p.relative_to(case_dir).as_posix() for p in case_dir.rglob("*") if p.is_file())


def case_summary(case: PhantomCase) -> dict[str, Any]:
    """The dataset.json entry of a case (files are added by the dataset writer)."""
    organs = sorted({le.organ for le in case.lesions})
    return {
        "id": case.case_id,
        "index": case.index,
        "site": case.site.site_id,
        "lesion_count": len(case.lesions),
        "lesion_types": sorted({le.kind for le in case.lesions}),
        "stratum": "+".join(organs) if organs else "none",
        "study_instance_uid": case.study_uid,
        "geometry": case.grid.volume(case.ct).geometry(),
        "dx_shape": list(case.drr.shape),
        "anatomy": case.anatomy.to_dict(),
    }


__all__ = ["PhantomCase", "build_case", "case_rngs", "case_summary", "dicom_meta", "write_case"]
