"""Registration (001 §8.5.1): known transforms recovered, saved reproducibly, TRE, mask propagation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from aimd.annotation import Registration, load_landmarks, read_transform, register_files
from aimd.core.errors import InvalidInputError
from aimd.imaging.nifti_io import read_nifti, write_nifti
from aimd.imaging.resample import from_sitk, to_sitk
from aimd.imaging.volume import Volume
from aimd.metrics import dice

SPACING = (1.2, 1.2, 1.5)


def _phantom() -> tuple[Volume, np.ndarray]:
    z, y, x = np.mgrid[:32, :40, :40].astype(np.float64)
    body = ((x - 20) / 15) ** 2 + ((y - 21) / 12) ** 2 + ((z - 16) / 13) ** 2 <= 1
    organ = ((x - 14) / 6) ** 2 + ((y - 18) / 5) ** 2 + ((z - 15) / 7) ** 2 <= 1
    ball = (x - 27) ** 2 + (y - 25) ** 2 + (z - 19) ** 2 <= 9
    image = 100.0 * body + 150.0 * organ + 300.0 * ball + 2.0 * x
    image = ndimage.gaussian_filter(image, 1.0).astype(np.float32)
    return Volume(image, spacing=SPACING, origin=(-24.0, -24.0, -24.0), modality="CT"), organ.astype(np.uint8)


def _truth(fixed: Volume) -> sitk.Euler3DTransform:
    t = sitk.Euler3DTransform()
    t.SetCenter(tuple(float(v) for v in fixed.index_to_world(np.array(fixed.size_xyz) / 2)))
    t.SetRotation(0.0, 0.0, np.deg2rad(4.0))
    t.SetTranslation((2.0, -1.5, 1.0))
    return t


@pytest.fixture(scope="module")
def case(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("reg")
    fixed, organ = _phantom()
    truth = _truth(fixed)
    moving = sitk.Resample(to_sitk(fixed), to_sitk(fixed), truth.GetInverse(), sitk.sitkLinear, 0.0)
    moving_organ = sitk.Resample(
        to_sitk(fixed.with_array(organ)), to_sitk(fixed), truth.GetInverse(), sitk.sitkNearestNeighbor, 0
    )
    write_nifti(fixed, root / "fixed.nii.gz")
    write_nifti(from_sitk(moving, modality="CT"), root / "moving.nii.gz")
    write_nifti(fixed.with_array(organ), root / "fixed_organ.nii.gz")
    write_nifti(from_sitk(moving_organ), root / "moving_organ.nii.gz")
    pts = np.array([fixed.index_to_world(p) for p in [(14, 18, 15), (27, 25, 19), (20, 21, 8), (10, 30, 22)]])
    (root / "lf.json").write_text(json.dumps({"points": pts.tolist()}))
    (root / "lm.json").write_text(json.dumps([list(truth.TransformPoint(tuple(p))) for p in pts]))
    return {
        "root": root,
        "fixed": root / "fixed.nii.gz",
        "moving": root / "moving.nii.gz",
        "lf": root / "lf.json",
        "lm": root / "lm.json",
        "moving_organ": root / "moving_organ.nii.gz",
        "fixed_organ": root / "fixed_organ.nii.gz",
    }


def test_rigid_recovers_the_known_transform_and_propagates_masks(case: dict[str, Path]) -> None:
    out = register_files(
        case["fixed"],
        case["moving"],
        case["root"] / "rigid",
        method="rigid",
        landmarks=(case["lf"], case["lm"]),
        masks=[case["moving_organ"]],
    )
    assert out.record.error is not None and out.record.error.metric == "tre_mm" and out.record.error.unit == "mm"
    assert out.record.error.value < 0.5 and out.info["tre_mm"]["max"] < 0.8
    saved = read_transform(out.transform_file)
    assert saved.GetName() == "Euler3DTransform"
    assert np.allclose(sitk.Euler3DTransform(saved).GetTranslation(), (2.0, -1.5, 1.0), atol=0.5)
    record = Registration.model_validate(json.loads((out.out_dir / "registration.json").read_text()))
    assert (record.algorithm, record.software, record.transform_file) == ("rigid", "SimpleITK", "transform.tfm")
    assert record.software_version == sitk.Version_VersionString()
    propagated = read_nifti(out.masks[0]).array
    assert dice(read_nifti(case["fixed_organ"]).array, propagated) > 0.9
    resampled = read_nifti(out.resampled_file)
    assert resampled.same_grid(read_nifti(case["fixed"]), atol=1e-3)


def test_same_seed_same_transform(case: dict[str, Path]) -> None:
    a = register_files(case["fixed"], case["moving"], case["root"] / "r1", method="rigid", seed=0)
    b = register_files(case["fixed"], case["moving"], case["root"] / "r2", method="rigid", seed=0)
    assert a.transform_file.read_text() == b.transform_file.read_text()
    assert a.record.error is not None and a.record.error.metric == "mattes_mutual_information"
    assert a.record.error.unit is None


@pytest.mark.parametrize("method", ["affine", "bspline"])
def test_affine_and_bspline_register_and_save(case: dict[str, Path], method: str) -> None:
    out = register_files(
        case["fixed"],
        case["moving"],
        case["root"] / method,
        method=method,
        landmarks=(case["lf"], case["lm"]),
        iterations=60,
    )
    assert out.record.error is not None and out.record.error.value < 1.5
    saved = sitk.ReadTransform(str(out.transform_file))  # the file alone reproduces the recorded error
    fixed_pts = np.array(json.loads(case["lf"].read_text())["points"])
    moving_pts = np.array(json.loads(case["lm"].read_text()))
    mapped = np.array([saved.TransformPoint(tuple(p)) for p in fixed_pts])
    assert out.record.error.value == pytest.approx(np.linalg.norm(mapped - moving_pts, axis=1).mean(), abs=1e-9)
    assert [s["stage"] for s in out.info["stages"]] == (["affine"] if method == "affine" else ["affine", "bspline"])


def test_bad_inputs(case: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"points": [[1, 2]]}')
    with pytest.raises(InvalidInputError, match="x, y, z"):
        load_landmarks(bad)
    with pytest.raises(InvalidInputError, match="unknown registration method"):
        register_files(case["fixed"], case["moving"], tmp_path / "o", method="demons")
    (tmp_path / "t.tfm").write_text("not a transform")
    with pytest.raises(InvalidInputError, match="ITK transform"):
        read_transform(tmp_path / "t.tfm")
