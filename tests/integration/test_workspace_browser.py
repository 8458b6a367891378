"""The browser workspace end to end in Debian's Chromium (WebGL2 through SwiftShader), against
`aimd platform serve`: admin → two annotators (TOTP, brush, autosave, reload, box, report link, attribute
form, submit with level-1 QC) → reviewer with Dice → freeze, export, verify (001 §6.4, §8.5, §10.1)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from workspace_support import CHROMIUM, blank_reason, chromium, login, npy_array, serve_platform, shot

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is absent (apt-get install chromium)"),
]

USERS = {"admin": "admin", "ann1": "annotator", "ann2": "annotator", "rev": "reviewer"}
NODULE_ATTRS = {"density": "ground_glass", "margin": "well_defined", "lobe": "RUL"}
SELECT_TEXT = """(word) => { const node = document.querySelector('#report').firstChild;
    const at = node.textContent.indexOf(word); const r = document.createRange();
    r.setStart(node, at); r.setEnd(node, at + word.length);
    const s = window.getSelection(); s.removeAllRanges(); s.addRange(r); }"""
SUBMIT_ANSWERED = "document.querySelector('#submitted') || document.querySelector('#ws-error').textContent"


def phantom_case(folder: Path) -> dict[str, Any]:
    """One de-identified phantom case: CT, the findings part of its report, clinical fields with units."""
    from aimd.phantoms.dataset import generate_dataset

    generate_dataset(folder, cases=1, size=64, sites=1, workers=1)
    case = folder / "cases" / "case_0001"
    report = (case / "report_zh.txt").read_text(encoding="utf-8")
    report = report[report.index("检查所见") : report.index("报告医师")].strip()
    clinical = json.loads((case / "clinical.json").read_text(encoding="utf-8"))
    fields: dict[str, Any] = {
        "exam_date": clinical["keys"]["scan_date"],
        "age": {"value": clinical["age"], "unit": "year"},
    }
    for lab in clinical["labs"]:
        fields[lab["code"]] = {
            "value": lab["value"],
            "unit": lab["unit"],
            "normal_range": lab["normal_range"],
            "timestamp": lab["measured_date"],
            "time_deviation": abs(lab["days_from_scan"]) > 90,
        }
    return {"nifti": case / "ct.nii.gz", "report": report, "fields": fields}


def token_client(page: Any, url: str) -> httpx.Client:
    """The API as the browser's own session (a second login would end the browser's session)."""
    token = page.evaluate("sessionStorage.getItem('aimd.token')")
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def open_workspace(page: Any) -> None:
    page.click("a.open-task")
    page.wait_for_function("window.aimdWorkspace && document.querySelector('#save-status').textContent.length > 0")
    page.wait_for_timeout(300)


def viewer_shot(page: Any, selector: str = "#gl") -> bytes:
    return page.locator(selector).first.screenshot()


def annotate(page: Any, served: Any, who: str) -> dict[str, Any]:
    """Draw a lesion with the brush, wait for autosave, reload, add a box and a report link, submit."""
    login(page, served, who)
    shot(page, f"{who}-1-task-list")
    open_workspace(page)
    assert blank_reason(viewer_shot(page)) is None, "the viewer canvas rendered blank"
    page.click("button.layout[data-layout=axial]")
    page.click("#tool-brush")
    box = page.locator("#gl").bounding_box()
    cx, cy = box["x"] + box["width"] * 0.42, box["y"] + box["height"] * 0.45
    page.mouse.move(cx, cy)
    page.mouse.down()
    for i in range(1, 13):
        page.mouse.move(cx + 4 * i, cy + 2 * i, steps=2)
    page.mouse.up()
    page.wait_for_function("document.querySelector('#save-status').textContent.includes('v1')", timeout=20000)
    drawn = np.asarray(page.evaluate("Array.from(window.aimdWorkspace.viewer.mask())"), dtype=np.uint8)
    assert drawn.max() == 5 and int((drawn == 5).sum()) > 5, "the brush drew nothing"
    task_id = int(page.evaluate("document.querySelector('#workspace').dataset.task"))
    api = token_client(page, served.url)
    r = api.get(f"/api/v1/tasks/{task_id}/draft")
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    saved = npy_array(r.content)
    assert np.array_equal(saved.ravel(), drawn), "the saved draft differs from the drawing"

    page.reload()
    page.wait_for_function("window.aimdWorkspace && document.querySelector('#save-status').textContent.includes('v1')")
    resumed = np.asarray(page.evaluate("Array.from(window.aimdWorkspace.viewer.mask())"), dtype=np.uint8)
    assert np.array_equal(resumed, drawn), "the drawing did not come back voxel for voxel after a reload"

    page.click("#tool-box")
    page.mouse.click(cx - 10, cy - 10)
    page.mouse.click(cx + 60, cy + 40)
    page.wait_for_selector(".finding-item[data-kind=object]")
    page.click(".finding-item[data-kind=mask]")
    page.evaluate(SELECT_TEXT, "磨玻璃结节")
    page.click("#link-span")
    page.wait_for_selector("#report mark.linked")
    # the attribute form is validated before anything is sent
    page.click("#submit")
    page.wait_for_function("document.querySelector('#ws-error').textContent.includes('density')")
    for name, value in NODULE_ATTRS.items():
        page.select_option(f".attr-form [data-attr={name}]", value)
    page.fill(".attr-form [data-attr=diameter_mm]", "6")
    page.dispatch_event(".attr-form [data-attr=diameter_mm]", "change")
    shot(page, f"{who}-2-workspace")
    page.click("#submit")
    page.wait_for_function(SUBMIT_ANSWERED, timeout=60000)
    assert page.locator("#submitted").count() == 1, page.inner_text("#ws-error") + page.inner_text("#qc")
    shot(page, f"{who}-3-submitted")
    return {"task": task_id, "mask": drawn, "api": api}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with serve_platform(tmp_path_factory.mktemp("workspace"), USERS) as s:
        yield s


def test_blank_canvas_is_caught() -> None:
    """The blank check itself: a flat frame and a nearly dark frame fail, a textured frame passes."""
    import io

    from PIL import Image

    def png(arr: np.ndarray) -> bytes:
        buf = io.BytesIO()
        Image.fromarray(arr.astype(np.uint8)).save(buf, format="PNG")
        return buf.getvalue()

    assert blank_reason(png(np.zeros((50, 50, 3)))) is not None
    dark = np.zeros((100, 100, 3))
    dark[:10, :10] = 255  # 1 % of the frame
    assert "lit" in (blank_reason(png(dark)) or "")
    ramp = np.tile(np.linspace(0, 255, 100)[None, :, None], (100, 1, 3))
    assert blank_reason(png(ramp)) is None


def test_scenario_admin_annotators_review_export(served: Any, tmp_path: Path) -> None:
    from aimd.annotation.verify import verify_export

    case = phantom_case(tmp_path / "phantom")
    with chromium() as ctx:
        admin = ctx.new_page()
        login(admin, served, "admin")
        admin.goto(f"{served.url}/#/admin")
        admin.fill("#new-name", "nodules-ws")
        admin.fill("#new-labels", "5=LUNG_NODULE")
        admin.click("#do-create")
        admin.wait_for_selector(".project .case-key")
        admin.fill(".project .case-key", "case_0001")
        admin.set_input_files(".project .nifti", str(case["nifti"]))
        admin.fill(".project .report-in", case["report"])
        admin.fill(".project .fields-in", json.dumps(case["fields"], ensure_ascii=False))
        admin.click(".project .do-import")
        admin.wait_for_function("document.querySelector('.project').textContent.includes('0/1')")
        admin.click(".project .do-distribute")
        admin.wait_for_function("document.querySelector('.project').textContent.includes('ann2')")
        shot(admin, "admin-1-project")
        admin.close()

        readers = []
        for who in ("ann1", "ann2"):
            page = ctx.new_page()
            readers.append(annotate(page, served, who))
            page.close()
        # the second reader drew with the same strokes on the same case: identical masks
        assert np.array_equal(readers[0]["mask"], readers[1]["mask"])

        rev = ctx.new_page()
        login(rev, served, "rev")
        rev.click("a.open-task")
        rev.wait_for_selector("#agreement .dice")
        rev.wait_for_function("window.aimdReview && window.aimdReview.viewers.length === 2")
        assert blank_reason(viewer_shot(rev, "canvas.review-gl")) is None
        dice = float(rev.locator("#agreement .dice").first.text_content())
        assert dice == pytest.approx(1.0)
        shot(rev, "reviewer-1-side-by-side")
        rev.click("#mode-overlay")
        rev.wait_for_function("window.aimdReview.viewers.length === 1")
        shot(rev, "reviewer-2-overlay")
        rev.click("#reject")
        rev.wait_for_function("document.querySelector('#review-error').textContent.length > 0")
        rev.fill("#reason", "outline and box agree with the report")
        rev.click("#accept")
        rev.wait_for_selector("#decided .ok")
        shot(rev, "reviewer-3-accepted")
        rev.close()

        admin = ctx.new_page()
        login(admin, served, "admin")
        admin.goto(f"{served.url}/#/admin")
        admin.wait_for_selector(".project .do-freeze")
        admin.click(".project .do-freeze")
        admin.wait_for_selector(".project .do-freeze", state="detached")  # re-drawn as frozen
        admin.click(".project .do-export")
        admin.wait_for_selector(".export-out")
        shot(admin, "admin-2-exported")
        exported = json.loads(admin.locator(".export-out").text_content())
        admin.close()

    trace = Path(exported["traceability"])
    errors = [f for f in verify_export(trace.parent) if f.severity == "error"]
    assert errors == []
    packages = [json.loads(p.read_text(encoding="utf-8")) for p in trace.parent.rglob("case_0001*.json")]
    anns = [a for pkg in packages for a in pkg.get("annotations", [])]
    assert any(a["type"] == "bbox" for a in anns), "the box did not reach the exported package"
    masks = [a for a in anns if a["type"] == "mask"]
    assert masks and all(a["cross_modal_links"] for a in masks), "the report link did not reach the package"
    spans = [s for pkg in packages for doc in pkg.get("texts", []) for s in doc["spans"]]
    assert spans and spans[0]["text"] == "磨玻璃结节"
