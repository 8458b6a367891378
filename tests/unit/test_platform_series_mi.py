"""The registration's Mattes-MI rule (001 §6.4.1): a series whose final mutual information with the annotated
image is worse than the project's ``registration_max_mi`` is stored as failed with the value and the reason,
beside the coverage rule; a matching series passes."""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path

import numpy as np
from platform_support import TASK_DEFINITION, make_site

from aimd.imaging.nifti_io import write_nifti
from aimd.imaging.volume import Volume
from aimd.platform.series import DEFAULT_MAX_MI, register_series

FOR_UID = "1.2.826.0.1.3680043.8.498.77"


def body(shift_mm: float = 0.0, contrast: float = 1.0) -> Volume:
    """A body with a lesion (MR-like when ``contrast`` is negative), moved ``shift_mm`` along x."""
    zz, yy, xx = np.ogrid[:20, :48, :48]
    inside = ((yy - 24) ** 2 / 400 + (xx - 24) ** 2 / 300) < 1
    lesion = ((zz - 10) ** 2 + (yy - 22) ** 2 + (xx - 30) ** 2) < 36
    arr = np.where(inside, 300, 0) + np.where(lesion, 250, 0) + np.random.default_rng(1).normal(0, 8, (20, 48, 48))
    arr = contrast * arr
    return Volume(arr.astype(np.int16), spacing=(1.0, 1.0, 2.0), origin=(shift_mm, 0.0, 0.0), modality="MR")


def noise() -> Volume:
    """Content unrelated to :func:`body`, on the same grid."""
    arr = np.random.default_rng(9).integers(0, 600, (20, 48, 48)).astype(np.int16)
    return Volume(arr, spacing=(1.0, 1.0, 2.0), modality="MR")


def test_a_matching_series_passes_and_unrelated_content_fails_with_its_value() -> None:
    good, moved = register_series(body(), body(3.0, contrast=-1.0), same_frame=False)
    assert good["status"] == "ok" and moved is not None
    assert good["mattes_mi"] < DEFAULT_MAX_MI and good["max_mi"] == DEFAULT_MAX_MI
    bad, nothing = register_series(body(), noise(), same_frame=True)
    assert bad["status"] == "failed" and nothing is None and bad["overlap"] == 1.0
    assert bad["mattes_mi"] > DEFAULT_MAX_MI
    assert f"{bad['mattes_mi']:.4f}" in bad["message"] and "limit -0.1000" in bad["message"]


def test_the_limit_is_the_projects_and_a_stricter_one_fails_a_matching_series(tmp_path: Path) -> None:
    site = make_site(tmp_path / "data", None)
    try:
        r = site.client.post(
            "/api/v1/projects",
            json={"name": "strict", "task_definition": TASK_DEFINITION, "label_map": {1: "LUNG"}, "readers": 1}
            | {"registration_max_mi": -5.0},
            headers=site.as_("admin"),
        )
        assert r.status_code == 201 and r.json()["registration_max_mi"] == -5.0, r.text
        project = r.json()["id"]
        case = site.client.post(
            f"/api/v1/projects/{project}/cases",
            json={"case_key": "c1", "image_nifti_b64": _b64(body()), "frame_of_reference_uid": FOR_UID},
            headers=site.as_("intake"),
        ).json()["id"]
        r = site.client.post(
            f"/api/v1/projects/{project}/cases/{case}/series",
            json={"series_key": "t2", "image_nifti_b64": _b64(body(contrast=-1.0)), "frame_of_reference_uid": FOR_UID},
            headers=site.as_("intake"),
        )
        reg = r.json()["registration"]
        assert r.status_code == 201 and reg["status"] == "failed" and reg["max_mi"] == -5.0
        assert reg["mattes_mi"] < DEFAULT_MAX_MI and "limit -5.0000" in reg["message"]
        default = site.project(readers=1, name="default limit")
        got = site.client.get(f"/api/v1/projects/{default}", headers=site.as_("admin")).json()
        assert got["registration_max_mi"] == DEFAULT_MAX_MI
        out_of_range = {"name": "x", "task_definition": TASK_DEFINITION, "label_map": {1: "LUNG"}}
        r = site.client.post(
            "/api/v1/projects", json=out_of_range | {"registration_max_mi": 0.5}, headers=site.as_("admin")
        )
        assert r.status_code == 422 and "registration_max_mi" in r.text
    finally:
        site.platform.close()


def _b64(volume: Volume) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "s.nii.gz"
        write_nifti(volume, path)
        return base64.b64encode(path.read_bytes()).decode()


def test_the_database_default_is_the_documented_default() -> None:
    from aimd.platform.models import Project

    column = Project.__table__.c.registration_max_mi
    assert column.default.arg == DEFAULT_MAX_MI and float(column.server_default.arg.text) == DEFAULT_MAX_MI


def test_the_final_mi_is_the_metrics_value_computed_without_gradient_images() -> None:
    import SimpleITK as sitk

    from aimd.imaging.resample import to_sitk
    from aimd.platform.series.registration import _mattes, _rigid

    fixed = sitk.Cast(to_sitk(body()), sitk.sitkFloat32)
    for other in (body(3.0, contrast=-1.0), noise()):
        moving = sitk.Cast(to_sitk(other), sitk.sitkFloat32)
        for transform in (sitk.Euler3DTransform(), _rigid(fixed, moving)):
            reg = sitk.ImageRegistrationMethod()  # ITK's defaults: gradient images of both
            reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
            reg.SetInterpolator(sitk.sitkLinear)
            reg.SetInitialTransform(transform, inPlace=False)
            assert _mattes(fixed, moving, transform) == reg.MetricEvaluate(fixed, moving)
