"""The demo path (annotate → QC → agree → export → verify) and its HTML QC report."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import matplotlib.image
import nibabel as nib
import numpy as np
import pytest
from test_annotation_builders import clean_package, qc

from aimd.annotation import check_package, read_sources, render_qc_report, run_annotation_demo
from aimd.phantoms import generate_dataset


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("demo")
    generate_dataset(root / "ph", cases=1, seed=2, size=48, workers=1)
    return run_annotation_demo(root / "ph", root / "out", readers=3, seed=0, seg=False)


def test_demo_numbers_agree_with_independent_checks(demo: dict) -> None:
    errors = sum(f.is_error for p in demo["packages"] for f in check_package(p))
    assert demo["qc"]["errors"] == errors
    assert demo["export_refused_without_force"] == (errors > 0) == demo["export_forced"]
    assert demo["verify_errors"] == 0 and demo["export_files"] > 0
    assert 0 < demo["min_dice"] <= demo["mean_dice"] <= 1


def test_report_has_tables_and_the_worst_slice(demo: dict) -> None:
    html = Path(demo["report"]).read_text(encoding="utf-8")
    for heading in (
        "Level-1 automatic QC",
        "Agreement between readers",
        "Labels and attributes",
        "Model-assisted labels",
        "Export",
        "Verification",
    ):
        assert heading in html
    png = base64.b64decode(re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1))
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.shape[0] > 100 and image[..., :3].std() > 0.05
    caption = re.search(
        r"Worst-agreeing pair: (\S+) \((\S+)\) vs (\S+) \((\S+)\) in (\S+), Dice ([0-9.]+).*?"
        r"axial slice (\d+)",
        html,
    )
    assert caption is not None
    id_a, reader_a, id_b, reader_b, case, dice, k = caption.groups()
    assert float(dice) == pytest.approx(demo["min_dice"], abs=5e-4)
    masks = []
    for ann_id, reader in ((id_a, reader_a), (id_b, reader_b)):
        src = read_sources(Path(demo["packages"][0]).parent / f"{reader}.json")[0]
        ann = next(a for a in src.package.annotations if a.id == ann_id)
        arr = np.transpose(np.asarray(nib.load(str(src.resolve(ann.data.mask_file))).dataobj), (2, 1, 0))
        masks.append(arr == ann.data.mask_value)
    disagreement = (masks[0] ^ masks[1]).sum(axis=(1, 2))
    assert disagreement[int(k)] == disagreement.max()


def test_report_escapes_text(tmp_path: Path) -> None:
    path = clean_package(tmp_path)
    out = render_qc_report(tmp_path / "r.html", qc={"<b>evil</b>.json": qc(path)})
    html = out.read_text()
    assert "&lt;b&gt;evil&lt;/b&gt;.json" in html and "<b>evil</b>" not in html
