"""The workspace's drawing tools in Debian's Chromium (WebGL2 through SwiftShader) against `aimd platform
serve`: fill, grow-cut, slice interpolation, undo/redo, the 409 conflict message, arbitration and the
one-slice display of large volumes. Every outcome is read back from the server (the saved draft or the
submission), never from what the page was told (001 §10.1.2–§10.1.4)."""

from __future__ import annotations

import base64
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from workspace_support import (
    CHROMIUM,
    Served,
    blank_reason,
    canvas_pixels,
    chromium,
    login,
    npy_array,
    serve_platform,
    shot,
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is absent (apt-get install chromium)"),
]

USERS = {"admin": "admin", "ann1": "annotator", "ann2": "annotator", "arb": "arbiter"}
SHAPE = (24, 64, 64)  # z, y, x
CENTRE = (12, 32, 40)
RADIUS = 9
TASK = {
    "goal": "outline lung nodules",
    "modalities": ["CT"],
    "objects_and_outputs": "nodule masks",
    "alignment_rules": "one image per case",
    "qc_and_traceability": "level-1 QC",
}
NODULE = {"density": "solid", "margin": "well_defined", "lobe": "RUL", "diameter_mm": 9}


FOR_UID = "1.2.826.0.1.3680043.8.498.7"


def sphere() -> np.ndarray:
    zz, yy, xx = np.ogrid[: SHAPE[0], : SHAPE[1], : SHAPE[2]]
    cz, cy, cx = CENTRE
    return ((zz - cz) ** 2 + (yy - cy) ** 2 + (xx - cx) ** 2) <= RADIUS**2


def ct_b64(contrast: tuple[int, int] = (200, -600), origin_x: float = 0.0, modality: str = "CT") -> str:
    """A bright sphere (the lesion) in a darker body: something grow-cut can separate."""
    from aimd.imaging.nifti_io import write_nifti
    from aimd.imaging.volume import Volume

    rng = np.random.default_rng(3)
    arr = np.where(sphere(), *contrast).astype(np.int16) + rng.normal(0, 10, SHAPE).astype(np.int16)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ct.nii.gz"
        volume = Volume(arr, spacing=(1.0, 1.0, 1.0), origin=(origin_x, 0.0, 0.0), modality=modality)
        write_nifti(volume, path)
        return base64.b64encode(path.read_bytes()).decode()


def new_task(
    served: Served, annotators: list[str], readers: int = 1, labels: dict[str, str] | None = None
) -> list[int]:
    """A project (label map ``labels``, by default 1 LUNG and 5 LUNG_NODULE) with one case handed to
    ``annotators``; their task ids, by reader."""
    with served.api("admin") as admin:
        n = len(admin.get("/api/v1/projects").json())
        label_map = labels or {"1": "LUNG", "5": "LUNG_NODULE"}
        body = {"name": f"tools-{n}", "task_definition": TASK, "label_map": label_map}
        project = admin.post("/api/v1/projects", json={**body, "readers": readers}).json()["id"]
        case = {"case_key": "sphere", "image_nifti_b64": ct_b64(), "report_text": "右肺上叶见结节。"}
        case["frame_of_reference_uid"] = FOR_UID
        admin.post(f"/api/v1/projects/{project}/cases", json=case).raise_for_status()
        admin.post(f"/api/v1/projects/{project}/distribute", json={"annotators": annotators}).raise_for_status()
        tasks = admin.get("/api/v1/tasks", params={"project": project}).json()
    return [t["id"] for t in sorted(tasks, key=lambda t: t["reader"])]


def page_api(page: Any, served: Served) -> httpx.Client:
    """The API as the page's own session (a second login would end it)."""
    token = page.evaluate("sessionStorage.getItem('aimd.token')")
    return httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


def draft(page: Any, served: Served, task: int) -> np.ndarray:
    with page_api(page, served) as api:
        r = api.get(f"/api/v1/tasks/{task}/draft")
        r.raise_for_status()
        return npy_array(r.content)


def open_task(page: Any, served: Served, task: int) -> None:
    page.goto(f"{served.url}/#/task/{task}")
    page.reload()  # a fresh workspace, not the one of the previous test
    page.wait_for_function("window.aimdWorkspace && document.querySelector('#save-status').textContent.length > 0")
    page.click("button.layout[data-layout=axial]")


def saved_after(page: Any, action: Any) -> int:
    """Run ``action`` (a change of the drawing) and wait for the autosave that follows it."""
    before = page.evaluate("window.aimdWorkspace.state.version")
    action()
    page.wait_for_function(f"window.aimdWorkspace.state.version > {before} && !window.aimdWorkspace.state.dirty")
    return int(page.evaluate("window.aimdWorkspace.state.version"))


def screen_of(page: Any, x: int, y: int) -> tuple[float, float]:
    """The page position of API voxel column x, row y in the axial view (for mouse strokes)."""
    return tuple(page.evaluate("([x, y]) => window.aimdWorkspace.viewer.screenOf(x, y)", [x, y]))


def stroke(page: Any, points: list[tuple[int, int]]) -> None:
    xy = [screen_of(page, x, y) for x, y in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for p in xy[1:]:
        page.mouse.move(*p, steps=6)
    page.mouse.up()


def check_fill(page: Any, served: Served, task: int) -> np.ndarray:
    """A closed triangle drawn with the fill tool: its inside is labelled, not only its outline."""
    open_task(page, served, task)
    page.click(".label[data-value='5']")
    page.click("#tool-fill")
    saved_after(page, lambda: stroke(page, [(20, 20), (44, 20), (32, 44), (20, 20)]))
    mask = draft(page, served, task)
    z = int(np.argmax((mask == 5).sum(axis=(1, 2))))
    assert (mask == 5).sum() > 200, f"the fill tool labelled {(mask == 5).sum()} voxels"
    assert mask[z, 28, 32] == 5, "the inside of the drawn triangle is not filled"
    assert mask[z, 50, 32] == 0 and mask[z, 28, 55] == 0, "the fill leaked outside the triangle"
    return mask


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve_platform(tmp_path_factory.mktemp("tools"), USERS) as s:
        yield s


@pytest.fixture(scope="module")
def ctx() -> Iterator[Any]:
    with chromium() as c:
        yield c


@pytest.fixture(scope="module")
def ann1(served: Served, ctx: Any) -> Any:
    """ann1's page, logged in once (password + TOTP) for the module."""
    page = ctx.new_page()
    login(page, served, "ann1")
    yield page
    page.close()


def test_fill_labels_the_inside_of_a_closed_outline(served: Served, ann1: Any) -> None:
    check_fill(ann1, served, new_task(served, ["ann1"])[0])


def test_the_fill_check_fails_when_the_tool_does_nothing(served: Served, ann1: Any) -> None:
    task = new_task(served, ["ann1"])[0]
    open_task(ann1, served, task)
    ann1.evaluate("window.aimdWorkspace.viewer.tool = () => {}")  # the button no longer arms the pen
    ann1.click("#tool-fill")
    stroke(ann1, [(20, 20), (44, 20), (32, 44), (20, 20)])
    ann1.wait_for_timeout(800)
    assert ann1.evaluate("window.aimdWorkspace.state.version") == 0, "nothing was drawn, yet a draft was saved"
    with page_api(ann1, served) as api:
        assert api.get(f"/api/v1/tasks/{task}/draft").status_code == 404


def test_grow_cut_separates_the_lesion_from_its_background(served: Served, ann1: Any) -> None:
    task = new_task(served, ["ann1"])[0]
    open_task(ann1, served, task)
    ann1.evaluate(f"window.aimdWorkspace.viewer.goToSlice({CENTRE[0]})")
    ann1.click("#tool-brush")
    ann1.click(".label[data-value='5']")
    saved_after(ann1, lambda: stroke(ann1, [(36, 30), (44, 34)]))
    ann1.click(".label[data-value='1']")
    saved_after(ann1, lambda: stroke(ann1, [(8, 8), (20, 56), (56, 56)]))
    seeds = draft(ann1, served, task)
    saved_after(ann1, lambda: ann1.click("#tool-growcut"))
    mask = draft(ann1, served, task)
    truth = sphere()
    grown = mask == 5
    dice = 2 * (grown & truth).sum() / (grown.sum() + truth.sum())
    assert grown.sum() > 10 * (seeds == 5).sum(), "grow-cut did not grow the lesion seed"
    assert dice > 0.8, f"grow-cut lesion Dice {dice:.3f} against the drawn sphere"
    assert (mask[~truth] == 1).mean() > 0.9, "the background seed did not claim the background"


def test_interpolation_fills_the_slices_between_two_drawn_slices(served: Served, ann1: Any) -> None:
    task = new_task(served, ["ann1"])[0]
    open_task(ann1, served, task)
    ann1.click("#tool-brush")
    ann1.click(".label[data-value='5']")
    ann1.evaluate("window.aimdWorkspace.viewer.goToSlice(6)")
    saved_after(ann1, lambda: stroke(ann1, [(24, 24), (40, 24), (40, 40), (24, 40), (24, 24)]))
    ann1.evaluate("window.aimdWorkspace.viewer.goToSlice(14)")
    saved_after(ann1, lambda: stroke(ann1, [(24, 24), (40, 24), (40, 40), (24, 40), (24, 24)]))
    two = draft(ann1, served, task)
    drawn = sorted({int(z) for z in np.nonzero(two == 5)[0]})
    assert len(drawn) == 2, f"the strokes landed on slices {drawn}"
    saved_after(ann1, lambda: ann1.click("#tool-interp"))
    mask = draft(ann1, served, task)
    per_slice = (mask == 5).sum(axis=(1, 2))
    assert all(per_slice[z] > 0 for z in range(drawn[0], drawn[1] + 1)), per_slice.tolist()
    assert per_slice[: drawn[0]].sum() == 0 and per_slice[drawn[1] + 1 :].sum() == 0
    assert np.array_equal(mask[drawn], two[drawn]), "interpolation changed the drawn slices"


def test_undo_and_redo_reach_the_saved_draft(served: Served, ann1: Any) -> None:
    task = new_task(served, ["ann1"])[0]
    open_task(ann1, served, task)
    ann1.click("#tool-brush")
    saved_after(ann1, lambda: stroke(ann1, [(10, 10), (30, 10)]))
    first = draft(ann1, served, task)
    saved_after(ann1, lambda: stroke(ann1, [(10, 40), (30, 50)]))
    second = draft(ann1, served, task)
    assert (second != first).any()
    saved_after(ann1, lambda: ann1.keyboard.press("Control+z"))
    assert np.array_equal(draft(ann1, served, task), first), "undo did not bring back the first stroke alone"
    saved_after(ann1, lambda: ann1.keyboard.press("Control+y"))
    assert np.array_equal(draft(ann1, served, task), second), "redo did not bring back the second stroke"


def test_a_draft_changed_elsewhere_shows_the_409_message(served: Served, ann1: Any) -> None:
    task = new_task(served, ["ann1"])[0]
    open_task(ann1, served, task)
    elsewhere = np.zeros(SHAPE, np.uint8)
    elsewhere[3, 3:6, 3:6] = 1
    with page_api(ann1, served) as api:
        body = npy_bytes(elsewhere)
        r = api.put(f"/api/v1/tasks/{task}/draft", content=body, headers={"If-Match": '"0"'})
        assert r.status_code == 200
    ann1.click("#tool-brush")
    stroke(ann1, [(20, 20), (40, 40)])
    ann1.wait_for_function("document.querySelector('#save-status').classList.contains('error')")
    assert "409" in ann1.inner_text("#save-status")
    assert np.array_equal(draft(ann1, served, task), elsewhere), "the browser overwrote the other draft"


def test_a_delta_save_sends_the_changed_box_and_round_trips(served: Served, ann1: Any) -> None:
    """Autosave PATCHes only the box of changed voxels; after a reload the page shows what the server
    stored (the stroke), and a PATCH against a stale version is refused with the conflict shown."""
    task = new_task(served, ["ann1"])[0]
    open_task(ann1, served, task)
    ann1.click("#tool-brush")
    sent: list[str] = []
    ann1.on("request", lambda r: sent.append(r.method) if r.url.split("?")[0].endswith("/draft") else None)
    saved_after(ann1, lambda: stroke(ann1, [(20, 20), (30, 24)]))
    patch = ann1.evaluate("window.aimdWorkspace.state.lastPatch")
    assert "PATCH" in sent and "PUT" not in sent, f"the autosave used {sent}"
    assert np.prod(patch["shape"]) < np.prod(SHAPE) / 20, f"the patch box {patch['shape']} is not the changed region"
    saved = draft(ann1, served, task)
    assert saved[:, 20:25, 20:31].any() and (saved > 0).sum() == (saved[:, 15:30, 15:36] > 0).sum()
    ann1.reload()
    ann1.wait_for_function("window.aimdWorkspace && window.aimdWorkspace.state.version >= 1")
    shown = np.asarray(ann1.evaluate("Array.from(window.aimdWorkspace.viewer.mask())"), np.uint8)
    assert np.array_equal(shown, saved.ravel()), "the reloaded page does not show the saved stroke"
    shot(ann1, "workspace-delta-saved")
    elsewhere = saved.copy()
    elsewhere[3, 3:6, 3:6] = 1
    with page_api(ann1, served) as api:
        headers = {"If-Match": f'"{int(ann1.evaluate("window.aimdWorkspace.state.version"))}"'}
        assert api.put(f"/api/v1/tasks/{task}/draft", content=npy_bytes(elsewhere), headers=headers).status_code == 200
    ann1.click("button.layout[data-layout=axial]")
    ann1.click("#tool-brush")
    stroke(ann1, [(40, 40), (50, 50)])
    ann1.wait_for_function("document.querySelector('#save-status').classList.contains('error')")
    assert "409" in ann1.inner_text("#save-status")
    shot(ann1, "workspace-delta-conflict")
    assert np.array_equal(draft(ann1, served, task), elsewhere), "the stale patch changed the stored draft"


def test_series_switch_keeps_the_drawing_and_names_a_failed_registration(served: Served, ctx: Any, ann1: Any) -> None:
    """An MR-like series (same frame of reference, dark lesion in a bright body), imported on the admin
    screen, replaces the shown voxels while the drawing stays, or is blended over the annotated image at
    the slider's opacity; a series whose registration failed is refused with its reason (001 §6.4.1)."""
    task = new_task(served, ["ann1"])[0]
    with served.api("admin") as admin:
        t = admin.get(f"/api/v1/tasks/{task}").json()
        url = f"/api/v1/projects/{t['project']}/cases/{t['case']}/series"
        body = {"series_key": "far", "frame_of_reference_uid": FOR_UID, "image_nifti_b64": ct_b64((200, -600), 900.0)}
        admin.post(url, json=body).raise_for_status()
    page = ctx.new_page()
    try:
        login(page, served, "admin")
        page.goto(f"{served.url}/#/admin")
        card = page.locator(f".card.project[data-project='{t['project']}']")
        card.locator(".series-case").select_option(str(t["case"]))
        card.locator(".series-key").fill("t2")
        card.locator(".series-for-uid").fill(FOR_UID)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "t2.nii.gz"
            path.write_bytes(base64.b64decode(ct_b64((-300, 400), 0.0, "MR")))
            card.locator(".series-nifti").set_input_files(str(path))
            card.locator(".do-series").click()
            page.wait_for_selector(".series-out.ok")
        assert "frame_of_reference · ok" in card.locator(".series-out").inner_text()
        shot(page, "admin-series-import")
    finally:
        page.close()
        served.tokens.pop("admin", None)  # the page's login ended the API session of that account
    open_task(ann1, served, task)
    ann1.click("#tool-brush")
    saved_after(ann1, lambda: stroke(ann1, [(20, 20), (30, 24)]))
    drawn = ann1.evaluate("Array.from(window.aimdWorkspace.viewer.mask())")
    before = ann1.locator("#gl").screenshot()
    ann1.click("button.series[data-series=t2]")
    ann1.wait_for_function("window.aimdWorkspace.state.series === 't2'")
    ann1.wait_for_timeout(300)
    after = ann1.locator("#gl").screenshot()
    assert float(np.abs(canvas_pixels(before) - canvas_pixels(after)).mean()) > 5, "the shown volume did not change"
    assert "frame_of_reference" in ann1.inner_text("#series-msg")
    assert ann1.evaluate("Array.from(window.aimdWorkspace.viewer.mask())") == drawn, "the drawing changed"
    shot(ann1, "workspace-series-t2")
    ann1.click("button.series[data-series=far]")
    ann1.wait_for_function("document.querySelector('#series-msg').classList.contains('error')")
    assert "covers 0%" in ann1.inner_text("#series-msg")
    assert ann1.evaluate("window.aimdWorkspace.state.series") == "t2", "a failed series was shown"
    shot(ann1, "workspace-series-failed")
    # blended: t2 over the annotated image (which keeps its window) at the slider's opacity
    ann1.click("button.series[data-series=reference]")
    ann1.wait_for_timeout(300)
    reference = canvas_pixels(ann1.locator("#gl").screenshot())
    ann1.check("#series-blend")
    ann1.click("button.series[data-series=t2]")
    ann1.wait_for_function("window.aimdWorkspace.viewer.nv.volumes.length === 2")
    assert "blended" in ann1.inner_text("#series-msg") or "叠加" in ann1.inner_text("#series-msg")

    def seen(opacity: int) -> np.ndarray:
        ann1.fill("#series-opacity", str(opacity))
        ann1.wait_for_timeout(300)
        return canvas_pixels(ann1.locator("#gl").screenshot())

    def off(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.abs(a - b).mean())

    none, half, full = seen(0), seen(50), seen(100)
    assert off(none, reference) < 1.5, "at opacity 0 the blended series still shows"
    assert off(half, reference) > 3 and off(full, reference) > off(half, reference) + 2, "opacity does not blend"
    assert off(full, canvas_pixels(after)) > 3, "the blend replaced the image instead of lying over it"
    wl = ann1.evaluate("window.aimdWorkspace.viewer.windowNow")
    assert (round(wl["center"]), round(wl["width"])) == (40, 400), f"the annotated image lost its window: {wl}"
    seen(50)
    shot(ann1, "workspace-series-blended")
    assert ann1.evaluate("Array.from(window.aimdWorkspace.viewer.mask())") == drawn, "the drawing changed"
    ann1.click("button.series[data-series=reference]")
    ann1.wait_for_function("window.aimdWorkspace.viewer.nv.volumes.length === 1")
    assert np.array_equal(draft(ann1, served, task).ravel(), np.asarray(drawn, np.uint8))


def canvas_at(png: bytes, page: Any, points: list[tuple[int, int]]) -> list[float]:
    """Brightness of the viewer canvas screenshot ``png`` at API voxels (x, y) of the shown axial slice."""
    px = canvas_pixels(png).mean(axis=2)
    box = page.locator("#gl").bounding_box()
    shown = "(window.aimdWorkspace || window.aimdLoading).viewer"
    out = []
    for x, y in points:
        sx, sy = page.evaluate(f"([x, y]) => {shown}.screenOf(x, y)", [x, y])
        out.append(float(px[round(sy - box["y"]), round(sx - box["x"])]))
    return out


def first_slice_then_volume(page: Any, served: Served, task: int) -> None:
    """Open a large task with its volume download held back: the full-resolution middle slice is drawn
    first (not blank, the lesion where the image has it), window/level works on it, and the volume that
    takes its place keeps the slice, the window and the picture."""
    held: list[Any] = []

    def hold(route: Any) -> None:
        held.append(route)

    page.route("**/api/v1/tasks/*/image", hold)
    try:
        page.goto(f"{served.url}/#/task/{task}")
        page.reload()
        page.wait_for_function("performance.getEntriesByName('aimd:first-slice').length === 1 && window.aimdLoading")
        assert held and not page.evaluate("window.aimdWorkspace"), "the volume came before the first slice"
        dims = page.evaluate("Array.from(window.aimdLoading.viewer.nv.volumes[0].dims)")
        assert dims[1:] == [SHAPE[2], SHAPE[1], 1], f"the first slice is not one full-resolution slice: {dims}"
        first = page.locator("#gl").screenshot()
        assert blank_reason(first) is None, "the first slice renders blank"
        lesion, body = canvas_at(first, page, [(CENTRE[2], CENTRE[1]), (CENTRE[2] - 2 * RADIUS, CENTRE[1])])
        assert lesion > body + 60, f"the first slice does not show the lesion ({lesion:.0f} vs {body:.0f})"
        shot(page, "workspace-first-slice")
        assert "loading" in page.inner_text("#save-status") or "加载" in page.inner_text("#save-status")
        page.fill("#wl-center", "-300")
        page.fill("#wl-width", "1200")
        page.dispatch_event("#wl-width", "change")
        page.wait_for_timeout(200)
        windowed = page.locator("#gl").screenshot()
        assert float(np.abs(canvas_pixels(windowed) - canvas_pixels(first)).mean()) > 5, "W/L did not change the slice"
    finally:
        for route in held:
            route.continue_()
        page.unroute("**/api/v1/tasks/*/image", hold)
    page.wait_for_function("window.aimdWorkspace && window.aimdWorkspace.viewer.ready")
    viewer = "window.aimdWorkspace.viewer"
    assert page.evaluate(f"{viewer}.nv.volumes.length") == 1
    assert page.evaluate(f"{viewer}.apiVoxel([0, 0, {viewer}.currentZ()])[2]") == SHAPE[0] // 2, "the slice changed"
    wl = page.evaluate(f"{viewer}.windowNow")
    assert abs(wl["center"] + 300) < 1 and abs(wl["width"] - 1200) < 1, f"the window was lost: {wl}"
    page.wait_for_timeout(200)
    volume = canvas_pixels(page.locator("#gl").screenshot())
    half = volume.shape[0] // 2  # the overview inset sits in the lower right corner
    assert float(np.abs(volume[:half] - canvas_pixels(windowed)[:half]).mean()) < 3, "the volume changed the picture"
    page.click("button.layout[data-layout=axial]")


def test_large_volume_slice_mode_draws_on_the_original_grid(served: Served, ann1: Any) -> None:
    """The one-slice display of large volumes (forced here on a small one): the full-resolution first
    slice comes before the volume; a stroke on the full-resolution coronal plane lands on that plane; W/L
    and slice changes work and an axial stroke lands on the shown slice, voxel for voxel as the page
    holds it; a series blended over the axial plane follows the opacity slider and is drawn on."""
    task = new_task(served, ["ann1"])[0]
    with served.api("admin") as admin:
        t = admin.get(f"/api/v1/tasks/{task}").json()
        body = {
            "series_key": "t2",
            "frame_of_reference_uid": FOR_UID,
            "image_nifti_b64": ct_b64((-300, 400), 0.0, "MR"),
        }
        url = f"/api/v1/projects/{t['project']}/cases/{t['case']}/series"
        admin.post(url, json=body).raise_for_status()
    ann1.evaluate("localStorage.setItem('aimd.sliceModeVoxels', '1000')")
    try:
        first_slice_then_volume(ann1, served, task)
        assert ann1.evaluate("window.aimdWorkspace.viewer.sliceMode")
        # the downsampled overview came first and shows the views slice mode leaves out
        assert ann1.evaluate("performance.getEntriesByName('aimd:first-overview').length") == 1
        assert blank_reason(ann1.locator("#overview").screenshot()) is None, "the overview renders blank"
        multi = ann1.locator("#overview").screenshot()
        ann1.click("button.layout[data-layout=coronal]")
        assert ann1.evaluate("window.aimdWorkspace.overview.nv.opts.sliceType") == 1  # NiiVue's SLICE_TYPE.CORONAL
        main_view = ann1.evaluate("window.aimdWorkspace.viewer.nv.opts.sliceType")
        assert main_view == 0, "the full image left its axial view"
        ann1.wait_for_timeout(200)
        assert (canvas_pixels(multi) != canvas_pixels(ann1.locator("#overview").screenshot())).any()
        # the coronal plane at full resolution over the main canvas, drawn on like any view
        ann1.wait_for_function("window.aimdWorkspace.plane.shown && window.aimdWorkspace.plane.nv.drawBitmap")
        for _ in range(3):
            ann1.keyboard.press("ArrowDown")
        ann1.wait_for_timeout(300)
        assert blank_reason(ann1.locator("#plane").screenshot()) is None, "the coronal plane renders blank"
        at = ann1.evaluate("window.aimdWorkspace.viewer.apiVoxel([0, window.aimdWorkspace.plane.at, 0])[1]")
        ann1.click("#tool-brush")
        plane_at = "([x, y, z]) => window.aimdWorkspace.plane.screenAt([x, y, z])"
        ends = [ann1.evaluate(plane_at, [x, at, z]) for x, z in ((10, 4), (50, 18))]

        def coronal_stroke() -> None:
            ann1.mouse.move(*ends[0])
            ann1.mouse.down()
            ann1.mouse.move(*ends[1], steps=8)
            ann1.mouse.up()

        saved_after(ann1, coronal_stroke)
        on_plane = draft(ann1, served, task)
        hit = np.argwhere(on_plane)
        assert len(hit) > 20 and set(hit[:, 1].tolist()) == {at}, "the coronal stroke left its plane"
        assert len(set(hit[:, 0].tolist())) >= 10, "the coronal stroke did not cross slices"
        patch = ann1.evaluate("window.aimdWorkspace.state.lastPatch")
        assert patch["shape"] == (hit.max(axis=0) - hit.min(axis=0) + 1).tolist(), patch
        shot(ann1, "workspace-large-coronal-drawn")
        ann1.click("button.layout[data-layout=axial]")
        ann1.evaluate("window.aimdWorkspace.applyWL(40, 400)")
        for _ in range(5):
            ann1.keyboard.press("ArrowUp")
        z = ann1.evaluate("window.aimdWorkspace.viewer.apiVoxel([0, 0, window.aimdWorkspace.viewer.currentZ()])[2]")
        saved_after(ann1, lambda: stroke(ann1, [(20, 20), (40, 30)]))
        mask = draft(ann1, served, task)
        drawn = np.asarray(ann1.evaluate("Array.from(window.aimdWorkspace.viewer.mask())"), np.uint8)
        # t2 blended over the full-resolution axial plane of the shown slice
        ann1.check("#series-blend")
        ann1.click("button.series[data-series=t2]")
        ann1.wait_for_function(
            "window.aimdWorkspace.plane.view === 'axial' && window.aimdWorkspace.plane.nv.volumes.length === 2"
        )
        assert ann1.evaluate("window.aimdWorkspace.plane.at") == ann1.evaluate("window.aimdWorkspace.viewer.currentZ()")
        looks = []
        for opacity in ("0", "100"):
            ann1.fill("#series-opacity", opacity)
            ann1.wait_for_timeout(300)
            looks.append(canvas_pixels(ann1.locator("#plane").screenshot()))
        assert float(np.abs(looks[0] - looks[1]).mean()) > 5, "the opacity slider does not blend the series"
        ann1.fill("#series-opacity", "50")
        saved_after(ann1, lambda: stroke_in(ann1, "axial", [(10, 50, z), (30, 56, z)], on="plane"))
        blended_stroke = draft(ann1, served, task) != mask
        shot(ann1, "workspace-large-blended")
    finally:
        ann1.evaluate("localStorage.removeItem('aimd.sliceModeVoxels')")
    assert np.array_equal(mask.ravel(), drawn)
    axial = mask != on_plane
    assert sorted({int(v) for v in np.nonzero(axial)[0]}) == [z], "the stroke is not on the shown slice"
    assert axial[z, 20:31, 20:41].any()
    assert blended_stroke.any() and sorted({int(v) for v in np.nonzero(blended_stroke)[0]}) == [z]


def stroke_in(page: Any, view: str, points: list[tuple[int, int, int]], on: str = "viewer") -> None:
    """A mouse stroke through API voxels (x, y, z) in the axial, coronal or sagittal view shown (of the
    main viewer, or ``on="plane"``: of the full-resolution plane of a large volume)."""
    at = f"([p, v]) => window.aimdWorkspace.{on}.screenAt(p, v)"
    xy = [page.evaluate(at, [list(p), view]) for p in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for p in xy[1:]:
        page.mouse.move(*p, steps=8)
    page.mouse.up()


def test_brush_and_eraser_draw_in_the_coronal_and_sagittal_views(served: Served, ann1: Any) -> None:
    """Strokes in the coronal and sagittal views land on the crosshair's plane of the original grid, the
    eraser too, and each delta save sends the box the stroke changed (read back from the server)."""
    task = new_task(served, ["ann1"])[0]
    open_task(ann1, served, task)
    ann1.click(".label[data-value='5']")
    ann1.click("#tool-brush")
    before = np.zeros(SHAPE, np.uint8)
    for view, axis in (("coronal", 1), ("sagittal", 2)):
        ann1.click(f"button.layout[data-layout={view}]")
        x, y, z = ann1.evaluate("window.aimdWorkspace.viewer.crosshair()")
        plane = y if view == "coronal" else x
        ends = [(8, y, 4), (50, y, 18)] if view == "coronal" else [(x, 10, 4), (x, 52, 18)]
        saved_after(ann1, lambda ends=ends, view=view: stroke_in(ann1, view, ends))
        mask = draft(ann1, served, task)
        new = np.argwhere(mask != before)  # (z, y, x) of the stroke's voxels
        assert len(new) > 20, f"the {view} stroke drew {len(new)} voxels"
        assert set(new[:, axis].tolist()) == {plane}, f"the {view} stroke left its plane: {set(new[:, axis].tolist())}"
        assert len(set(new[:, 0].tolist())) >= 10, f"the {view} stroke did not cross slices"
        patch = ann1.evaluate("window.aimdWorkspace.state.lastPatch")
        lo, hi = new.min(axis=0), new.max(axis=0)
        assert patch["shape"] == (hi - lo + 1).tolist(), f"the {view} patch box {patch['shape']} ≠ the stroke's"
        assert [patch["at"][k] for k in "zyx"] == lo.tolist()
        shot(ann1, f"workspace-draw-{view}")
        before = mask
    ann1.click("#tool-eraser")
    saved_after(ann1, lambda: stroke_in(ann1, "sagittal", [(x, 10, 4), (x, 52, 18)]))
    erased = draft(ann1, served, task)
    gone = np.argwhere(erased != before)
    assert (erased[tuple(new.T)] == 0).all(), "the eraser left voxels of the sagittal stroke"
    assert set(gone[:, 2].tolist()) == {x} and (erased == 5).sum() > 20, "the eraser reached beyond its plane"


def test_label_values_above_255_are_drawn_saved_as_uint16_and_loaded_back(served: Served, ann1: Any) -> None:
    """A taxonomy value 300 is drawn as draw index 2 of NiiVue's 8-bit bitmap, saved as a uint16 mask holding
    300 and shown again after a reload; more than 255 labels are refused with the reason."""
    task = new_task(served, ["ann1"], labels={"1": "LUNG", "300": "LUNG_NODULE"})[0]
    open_task(ann1, served, task)
    ann1.click(".label[data-value='300']")
    ann1.click("#tool-brush")
    saved_after(ann1, lambda: stroke(ann1, [(20, 20), (36, 28)]))
    ann1.click(".label[data-value='1']")
    saved_after(ann1, lambda: stroke(ann1, [(20, 40), (36, 48)]))
    mask = draft(ann1, served, task)
    assert mask.dtype == np.uint16, f"a mask with label 300 was saved as {mask.dtype}"
    assert set(np.unique(mask).tolist()) == {0, 1, 300}
    assert (mask == 300)[:, 20:29, 20:37].sum() == (mask == 300).sum() > 10, "label 300 is not where it was drawn"
    ann1.reload()
    ann1.wait_for_function("window.aimdWorkspace && window.aimdWorkspace.state.version >= 2")
    shown = np.asarray(ann1.evaluate("Array.from(window.aimdWorkspace.viewer.mask())"), np.uint16)
    assert np.array_equal(shown, mask.ravel()), "the reloaded drawing differs from the saved uint16 mask"
    indices = set(ann1.evaluate("Array.from(new Set(window.aimdWorkspace.viewer.nv.drawBitmap))"))
    assert indices == {0, 1, 2}, f"draw indices {indices}"
    assert ann1.locator(".finding-item[data-id='300']").count() == 1, "the label 300 finding is not listed"
    shot(ann1, "workspace-label-300")
    refused = ann1.evaluate(
        """() => { try { window.aimdWorkspace.viewer.setLabels(Array.from({ length: 256 }, (_, i) =>
        ({ value: i + 1, code: `L${i + 1}` }))); return null; } catch (e) { return e.message; } }"""
    )
    assert refused and "256 labels" in refused and "at most 255" in refused, refused


def test_arbiter_takes_one_readers_mask_as_final(served: Served, ctx: Any, ann1: Any) -> None:
    tasks = set(new_task(served, ["ann1", "ann2"], readers=2))
    masks = []
    for who, shift in (("ann1", 0), ("ann2", 12)):
        mask = np.zeros(SHAPE, np.uint8)
        mask[10:14, 26:38, 26 + shift : 38 + shift] = 5
        masks.append(mask)
        with page_api(ann1, served) if who == "ann1" else served.api(who) as api:
            (task,) = [t["id"] for t in api.get("/api/v1/tasks").json() if t["id"] in tasks]
            r = api.put(f"/api/v1/tasks/{task}/draft", content=npy_bytes(mask), headers={"If-Match": '"0"'})
            r.raise_for_status()
            body = {"attributes": {"5": NODULE}}
            r = api.post(f"/api/v1/tasks/{task}/submit", json=body, headers={"Idempotency-Key": f"t{task}"})
            assert r.status_code == 200, r.text
    assert r.json()["routed"]["next"] == "arbitration"
    page = ctx.new_page()
    login(page, served, "arb")
    page.click("a.open-task")
    page.wait_for_selector("button.use-mask")
    page.locator(".qc-sub:has-text('(ann2)') button.use-mask").click()
    page.wait_for_function("window.aimdWorkspace && document.querySelector('#save-status').textContent.length > 0")
    for name, value in NODULE.items():
        if name == "diameter_mm":
            page.fill(".attr-form [data-attr=diameter_mm]", str(value))
            page.dispatch_event(".attr-form [data-attr=diameter_mm]", "change")
        else:
            page.select_option(f".attr-form [data-attr={name}]", value)
    page.click("#submit")
    page.wait_for_selector("#submitted")
    token = page.evaluate("sessionStorage.getItem('aimd.token')")
    page.close()
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as api:
        (case,) = {t["case"] for t in api.get("/api/v1/tasks").json() if t["kind"] == "arbitrate"}
        subs = api.get(f"/api/v1/cases/{case}/submissions").json()
        final = [s for s in subs if s["current"] and s["annotator"] == "arb"]
        assert len(final) == 1, subs
        got = npy_array(api.get(f"/api/v1/submissions/{final[0]['id']}/mask").content)
    assert np.array_equal(got, masks[1]), "the arbitrated mask is not ann2's mask"


def npy_bytes(arr: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def overlay_alpha(page: Any, x: int, y: int) -> int:
    """Alpha of the vector overlay at API voxel (x, y) of the shown slice."""
    return int(
        page.evaluate(
            """([x, y]) => { const c = document.querySelector('#vec'), r = c.getBoundingClientRect();
            const p = window.aimdWorkspace.viewer.screenOf(x, y);
            const px = c.getContext('2d').getImageData(Math.round(p[0] - r.left), Math.round(p[1] - r.top), 1, 1);
            return px.data[3]; }""",
            [x, y],
        )
    )


def test_box_and_point_are_drawn_over_the_image_and_kept_on_the_server(served: Served, ann1: Any) -> None:
    task = new_task(served, ["ann1"])[0]
    open_task(ann1, served, task)
    z = ann1.evaluate("window.aimdWorkspace.viewer.apiVoxel([0, 0, window.aimdWorkspace.viewer.currentZ()])[2]")
    ann1.click(".label[data-value='5']")
    ann1.click("#tool-box")
    ann1.mouse.click(*screen_of(ann1, 10, 12))
    ann1.mouse.click(*screen_of(ann1, 30, 40))
    ann1.click("#tool-point")
    ann1.mouse.click(*screen_of(ann1, 50, 20))
    ann1.wait_for_function("window.aimdWorkspace.state.marksVersion >= 1 && !window.aimdWorkspace.state.marksSaving")
    ann1.wait_for_timeout(600)  # the debounced save of the last click
    with page_api(ann1, served) as api:
        marks = api.get(f"/api/v1/tasks/{task}/marks").json()
    box, point = marks["objects"]
    assert box["type"] == "bbox" and box["bbox"] == [10, 12, 30, 40] and box["slice_index"] == z
    assert point["type"] == "point" and point["point"] == [50, 20, z]
    assert box["label_code"] == "LUNG_NODULE"
    ann1.reload()  # resumed from the server, not from the page's memory
    ann1.wait_for_function("window.aimdWorkspace && window.aimdWorkspace.state.marks.objects.length === 2")
    ann1.click("button.layout[data-layout=axial]")
    ann1.wait_for_timeout(300)
    assert overlay_alpha(ann1, 10, 26) > 0 and overlay_alpha(ann1, 20, 12) > 0, "the box is not drawn on the overlay"
    assert overlay_alpha(ann1, 50, 20) > 0, "the point is not drawn on the overlay"
    assert overlay_alpha(ann1, 20, 26) == 0, "the inside of the box is painted"
    ann1.evaluate("window.aimdWorkspace.viewer.slice(3)")
    ann1.wait_for_timeout(300)
    assert overlay_alpha(ann1, 10, 26) == 0, "the box is drawn on a slice it does not belong to"
