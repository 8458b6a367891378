"""Browser workspace timings in Chromium (001 §10.2.1), read with the Performance API.

A 512×512×200 int16 CT is imported into a platform served by `aimd platform serve` on loopback; one
annotator opens the task in headless Chromium (WebGL2 through SwiftShader, the CI renderer: a GPU
machine is faster). Measured:

* first rendered slice: from the workspace screen's start to the first frame finished with a
  full-resolution slice of the image in the canvas — for a large volume the middle slice by
  `GET /tasks/{id}/slice` while the volume downloads; peers in the same run: the same page opened with
  that first slice switched off (localStorage aimd.firstSlice=off: the whole volume first, the previous
  path) and the bare download of the image bytes by `fetch` in the page; also the time until the
  volume has taken the slice's place (drawing possible) and the overview (downsampled, after it);
* slice change and window/level change: one step each, drawn and `gl.finish()`ed, median of --repeat;
* brush stroke to saved draft: from the drawing change to the autosave's answer (debounce included) —
  the autosave sends the gzip box of changed voxels (delta save); peer: the previous path, the whole
  label volume sent by PUT from the same page. The saved mask is read back through the API and compared
  with the drawing first.

Targets (issue 14): first slice ≤ 2 s, slice and W/L change ≤ 50 ms median, stroke → saved ≤ 500 ms.
Usage: python benchmarks/ui_timings.py [--size 512 --slices 200 --repeat 25 --wl-repeat 5]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from workspace_support import chromium, login, npy_array, serve_platform

TASK = {
    "goal": "benchmark",
    "modalities": ["CT"],
    "objects_and_outputs": "lesion mask",
    "alignment_rules": "one image per case",
    "qc_and_traceability": "level-1 QC",
}
STEPS = """async ([kind, n]) => {
  const nv = window.aimdWorkspace.viewer.nv, out = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    if (kind === 'slice') window.aimdWorkspace.viewer.slice(i % 2 ? -1 : 1);
    else window.aimdWorkspace.applyWL(40 + (i % 2) * 200, 400 + (i % 2) * 600);
    nv.drawScene(); nv.gl.finish();
    out.push(performance.now() - t);
  }
  return out;
}"""

# The previous autosave path, timed in the same page: the whole label volume as .npy by PUT.
WHOLE_SAVE = """async (id) => {
  const w = window.aimdWorkspace, t = performance.now();
  const [nx, ny, nz] = w.viewer.dims, m = w.viewer.mask();
  let header = `{'descr': '|u1', 'fortran_order': False, 'shape': (${nz}, ${ny}, ${nx}), }`;
  header += ' '.repeat((64 - ((10 + header.length + 1) % 64)) % 64) + '\\n';
  const body = new Uint8Array(10 + header.length + m.length);
  body.set([0x93, 78, 85, 77, 80, 89, 1, 0, header.length & 255, header.length >> 8]);
  body.set(new TextEncoder().encode(header), 10);
  body.set(m, 10 + header.length);
  const r = await fetch(`/api/v1/tasks/${id}/draft`, { method: 'PUT', body, headers: {
    Authorization: `Bearer ${sessionStorage.getItem('aimd.token')}`, 'If-Match': `"${w.state.version}"` } });
  if (!r.ok) throw new Error(`whole-mask save: HTTP ${r.status}`);
  w.state.version = (await r.json()).draft_version;
  return performance.now() - t;
}"""


def ct_nifti(size: int, slices: int, folder: Path) -> bytes:
    from aimd.imaging.nifti_io import write_nifti
    from aimd.imaging.volume import Volume

    rng = np.random.default_rng(0)
    zz, yy, xx = np.ogrid[:slices, :size, :size]
    body = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (0.42 * size) ** 2
    arr = np.where(body, 40, -1000).astype(np.int16) + rng.normal(0, 15, (slices, size, size)).astype(np.int16)
    lesion = ((zz - slices / 2) ** 2 + (yy - size / 2) ** 2 + (xx - size / 3) ** 2) < (size / 20) ** 2
    arr[lesion] = 120
    path = folder / "ct.nii"
    write_nifti(Volume(arr, spacing=(0.7, 0.7, 1.25), modality="CT"), path)
    return path.read_bytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--slices", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=25, help="slice changes")
    ap.add_argument("--wl-repeat", type=int, default=5, help="window/level changes")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        raw = ct_nifti(args.size, args.slices, folder)
        with serve_platform(folder, {"admin": "admin", "ann1": "annotator", "ann2": "annotator"}) as served:
            with served.api("admin") as admin:
                body = {"name": "ui-bench", "task_definition": TASK, "label_map": {"1": "LUNG_NODULE"}, "readers": 1}
                project = admin.post("/api/v1/projects", json=body).json()["id"]
                case = {"case_key": "big", "image_nifti_b64": base64.b64encode(raw).decode()}
                admin.post(f"/api/v1/projects/{project}/cases", json=case).raise_for_status()
                admin.post(f"/api/v1/projects/{project}/distribute", json={"annotators": ["ann1"]}).raise_for_status()
            with chromium() as ctx:
                page = ctx.new_page()
                page.set_default_timeout(1_200_000)
                page.on("pageerror", lambda e: print(f"page error: {e}", file=sys.stderr))
                login(page, served, "ann1")
                task = page.evaluate("document.querySelector('a.open-task').getAttribute('href')").split("/")[-1]
                peer = page.evaluate(
                    """async (id) => { const t = performance.now();
                    const r = await fetch(`/api/v1/tasks/${id}/image`,
                      { headers: { Authorization: `Bearer ${sessionStorage.getItem('aimd.token')}` } });
                    await r.arrayBuffer(); return performance.now() - t; }""",
                    task,
                )
                # peer: the same page opened with the whole volume first (localStorage aimd.firstSlice=off)
                page.evaluate("localStorage.setItem('aimd.firstSlice', 'off')")
                page.click("a.open-task")
                page.wait_for_function("window.aimdWorkspace", timeout=1_200_000)
                first_plain = page.evaluate("performance.getEntriesByName('aimd:first-slice')[0].duration")
                page.evaluate("localStorage.removeItem('aimd.firstSlice')")
                page.reload()
                page.wait_for_function("window.aimdWorkspace", timeout=1_200_000)
                first = page.evaluate("performance.getEntriesByName('aimd:first-slice')[0].duration")
                volume = page.evaluate("performance.getEntriesByName('aimd:volume').map((e) => e.duration)")
                ov = page.evaluate("performance.getEntriesByName('aimd:first-overview').map((e) => e.duration)")
                page.evaluate("window.aimdWorkspace.viewer.layout('axial')")
                slice_ms = page.evaluate(STEPS, ["slice", args.repeat])
                wl_ms = page.evaluate(STEPS, ["wl", args.wl_repeat])
                page.evaluate("window.aimdWorkspace.setTool('brush')")
                box = page.locator("#gl").bounding_box()
                cx, cy = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5
                page.mouse.move(cx, cy)
                page.mouse.down()
                for i in range(1, 10):
                    page.mouse.move(cx + 5 * i, cy + 3 * i, steps=2)
                page.mouse.up()
                page.wait_for_function(
                    "performance.getEntriesByName('aimd:change-to-saved').length > 0", timeout=1_200_000
                )
                saved_ms = page.evaluate("performance.getEntriesByName('aimd:change-to-saved')[0].duration")
                parts = page.evaluate(
                    """['scan', 'gzip', 'request'].map((k) => performance.getEntriesByName(`aimd:save-${k}`)
                    .map((e) => e.duration)[0] ?? null)"""
                )
                # compared by digest: a 512×512×200 mask is too large to hand over as a list
                drawn_sha = page.evaluate(
                    """async () => { const m = window.aimdWorkspace.viewer.mask();
                    const d = await crypto.subtle.digest('SHA-256', m);
                    return [Array.from(new Uint8Array(d)).map((b) => b.toString(16).padStart(2, '0')).join(''),
                            m.some((v) => v !== 0)]; }"""
                )
                patch = page.evaluate("window.aimdWorkspace.state.lastPatch")
                whole_ms = page.evaluate(WHOLE_SAVE, task)
                token = page.evaluate("sessionStorage.getItem('aimd.token')")
            r = httpx.get(
                f"{served.url}/api/v1/tasks/{task}/draft", headers={"Authorization": f"Bearer {token}"}, timeout=120
            )
            r.raise_for_status()
            saved = np.ascontiguousarray(npy_array(r.content), dtype=np.uint8)
            if not drawn_sha[1] or hashlib.sha256(saved.tobytes()).hexdigest() != drawn_sha[0]:
                raise SystemExit("the saved draft differs from the drawing: timings not reported")
    print(f"CT {args.size}×{args.size}×{args.slices} int16, Chromium + SwiftShader, loopback")
    print(f"first rendered slice     {first:8.0f} ms   (full-resolution middle slice)   target ≤ 2000 ms")
    print(
        f"  peer: volume first     {first_plain:8.0f} ms   (same page, first slice drawn from the whole volume; "
        f"ratio {first_plain / first:.1f}×)"
    )
    print(f"  peer: image download   {peer:8.0f} ms   (the volume's bytes alone, fetch in the page)")
    if volume:
        print(f"volume in place          {volume[0]:8.0f} ms   (the volume took the slice's place: drawing possible)")
    if ov:
        print(f"overview shown           {ov[0]:8.0f} ms   (downsampled axial/coronal/sagittal, after the volume)")
    print(f"slice change median      {statistics.median(slice_ms):8.1f} ms   target ≤ 50 ms")
    print(f"window/level median      {statistics.median(wl_ms):8.1f} ms   target ≤ 50 ms")
    print(
        f"brush stroke → saved     {saved_ms:8.0f} ms   (delta save of a {patch['bytes']} B gzip box "
        f"{'×'.join(map(str, patch['shape']))}, 40 ms debounce included)   target ≤ 500 ms"
    )
    scan, packed, request = parts
    print(
        f"  of which: changed-box scan {scan:.1f} ms (where the pen went), gzip {packed:.1f} ms, "
        f"PATCH request {request:.0f} ms (server: apply the box, store the version)"
    )
    print(
        f"  peer: whole-mask save  {whole_ms:8.0f} ms   (the previous path: the full label volume by PUT, "
        f"no debounce; ratio {whole_ms / saved_ms:.1f}×)"
    )


if __name__ == "__main__":
    main()
