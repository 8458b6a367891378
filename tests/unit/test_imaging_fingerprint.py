"""Device-protocol fingerprints: configurations from DICOM headers, HU offset and noise learned, harmonisation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from typer.testing import CliRunner

from aimd.cli.data import app
from aimd.core.errors import InvalidInputError
from aimd.imaging.dicom_read import read_dicom_series
from aimd.imaging.fingerprint import config_key, fingerprint, harmonise, harmonise_image, region_stats
from aimd.phantoms import generate_dataset
from aimd.phantoms.sites import SITE_PROFILES

runner = CliRunner()
SITES = {p.manufacturer: p for p in SITE_PROFILES[:3]}


@pytest.fixture(scope="module")
def sites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fingerprint") / "ph"
    generate_dataset(root, cases=6, seed=1, size=48, sites=3, workers=1)
    return root


def _by_maker(table: dict) -> dict[str, dict]:
    return {row["Manufacturer"]: row for row in table["configurations"]}


def test_phantom_sites_give_their_configurations_offsets_and_noise(sites: Path) -> None:
    result = runner.invoke(app, ["fingerprint", str(sites), "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    rows = _by_maker(table)
    assert set(rows) == set(SITES) and all(r["series"] == 2 for r in rows.values())
    for maker, site in SITES.items():
        row = rows[maker]
        assert row["ManufacturerModelName"] == site.model and float(row["SliceThickness"]) == site.slice_mm
        assert float(row["KVP"]) == site.kvp
        assert row["offset_from"] == "air"
        # learned from the images: the sites' calibration offsets relative to the reference (SITE_A)
        assert row["hu_offset"] == pytest.approx(site.hu_offset - SITE_PROFILES[0].hu_offset, abs=2.0)
        assert row["noise_hu"] == pytest.approx(site.noise_hu, rel=0.2)
        assert row["recommended_window"] == {"level": pytest.approx(40 + row["hu_offset"]), "width": 400.0}
    assert table["reference"] == rows["GE MEDICAL SYSTEMS"]["configuration"]
    assert {s["reason"] for s in table["skipped"]} == {"modality DX, not CT: no HU"}  # radiographs carry no HU

    siemens = rows["SIEMENS"]["configuration"]
    moved = _by_maker(fingerprint(sites, reference=siemens))
    assert moved["SIEMENS"]["hu_offset"] == 0.0 and moved["SIEMENS"]["reference"]
    assert moved["Philips"]["hu_offset"] == pytest.approx(-14.0, abs=2.0)


def test_harmonisation_moves_a_site_onto_the_reference(sites: Path, tmp_path: Path) -> None:
    table_file = tmp_path / "fp.json"
    assert runner.invoke(app, ["fingerprint", str(sites), "--out", str(table_file)]).exit_code == 0
    table = json.loads(table_file.read_text())
    case = next(
        p.parent
        for p in sorted(sites.glob("cases/*/ct/*.dcm"))
        if pydicom.dcmread(p, stop_before_pixels=True).Manufacturer == "Philips"
    )
    volume = read_dicom_series(case)
    key = config_key(pydicom.dcmread(next(case.iterdir()), stop_before_pixels=True))
    before = region_stats(volume.array)["air"]["median"]
    mapped, done = harmonise(volume, table, key)
    after = region_stats(mapped.array)["air"]["median"]
    assert done["applied"] and before == pytest.approx(-1008, abs=3)  # Philips site reads 8 HU low
    assert after == pytest.approx(-1000, abs=2) and abs(after + 1000) < abs(before + 1000)
    unknown, why = harmonise(volume, table, {**key, "KVP": "80"})
    assert not why["applied"] and "not in the fingerprint table" in why["reason"] and unknown is volume
    same, how = harmonise_image(case, volume, table_file)  # the header read from the series itself
    assert how == done and np.array_equal(same.array, mapped.array)
    with pytest.raises(InvalidInputError, match="needs the image's DICOM header"):
        harmonise_image(case.parent / "ct.nii.gz", volume, table_file)
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(InvalidInputError, match="not a fingerprint table"):
        harmonise_image(case, volume, tmp_path / "bad.json")


def test_real_dicom_from_pydicom_and_a_miscalibrated_copy(tmp_path: Path) -> None:
    source = Path(get_testdata_file("CT_small.dcm"))
    folder = tmp_path / "real"
    folder.mkdir()
    shutil.copy(source, folder / "a.dcm")
    ds = pydicom.dcmread(source)
    ds.SeriesInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["fingerprint-test"])
    ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=["fingerprint-test-sop"])
    ds.KVP = "140"
    ds.RescaleIntercept = float(ds.RescaleIntercept) + 20  # the same pixels read 20 HU higher
    ds.save_as(folder / "b.dcm")
    table = fingerprint(folder)
    rows = {row["KVP"]: row for row in table["configurations"]}
    real = rows["120"]
    assert (real["Manufacturer"], real["ManufacturerModelName"], real["ConvolutionKernel"]) == (
        "GE MEDICAL SYSTEMS",
        "RHAPSODE",
        "STANDARD",
    )
    assert real["SliceThickness"] == "5" and real["reference"]
    # this small field of view holds no air: noise is not measured and the offset comes from fat and water
    assert real["air_median_hu"] is None and real["noise_hu"] is None
    assert rows["140"]["offset_from"] == "fat+water"
    assert rows["140"]["hu_offset"] == pytest.approx(20.0, abs=1.0)


def test_bad_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no CT series"):
        fingerprint(Path(get_testdata_file("MR_small.dcm")))
    with pytest.raises(InvalidInputError, match="does not exist"):
        fingerprint(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="reference configuration"):
        fingerprint(Path(get_testdata_file("CT_small.dcm")), reference="nobody")
    few = region_stats(np.full(50, -1000.0))
    assert few["air"]["median"] is None and few["noise_hu"] is None  # too few voxels is "not measured"
