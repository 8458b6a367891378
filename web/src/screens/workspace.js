// The annotation workspace: viewer + tools (left), report / fields / objects / QC (right), autosave.
import { call, get } from "../api.js";
import { gzip, patchOf, writeBox } from "../delta.js";
import { h, mount, toast } from "../dom.js";
import { getLang, t } from "../i18n.js";
import { flip, flipsFor, parseNpy, writeNpy } from "../npy.js";
import { VectorOverlay } from "../overlay.js";
import { PlaneView } from "../plane.js";
import { css, isLarge, Viewer } from "../viewer.js";

// Strokes arrive whole (at mouse-up) and saves go one at a time, changes made meanwhile riding on the
// next one; the short wait only gathers a burst (a stroke and an undo, several quick clicks).
const DEBOUNCE_MS = 40;
const MARKS_DEBOUNCE_MS = 250;
const SHORTCUTS = [["B", "brush"], ["E", "eraser"], ["F", "fill"], ["N", "navigate"], ["X", "box"], ["P", "point"],
  ["G", "polygon"], ["Ctrl+Z", "undo"], ["Ctrl+Y", "redo"], ["1-9", "labels"], ["↑/↓", "slice"], ["+/-", "zoom"], ["W", "window"]];

export function labelName(l) { return getLang() === "zh" ? l.name_zh : l.name_en; }

export function attributeErrors(label, values) {
  const errs = [];
  for (const a of label.attributes || []) {
    const v = values?.[a.name];
    if (v === undefined || v === "") { if (a.required) errs.push(`${label.code}.${a.name}: ${t("required")}`); continue; }
    if (a.kind === "number" || a.kind === "integer") {
      const n = Number(v);
      if (!Number.isFinite(n) || (a.kind === "integer" && !Number.isInteger(n))) errs.push(`${label.code}.${a.name}: ${v}`);
      else if ((a.minimum != null && n < a.minimum) || (a.maximum != null && n > a.maximum)) errs.push(`${label.code}.${a.name}: ${t("outOfRange")} [${a.minimum}, ${a.maximum}]`);
    }
    if (a.kind === "enum" && !a.values.some((e) => e.code === v || e.value === v)) errs.push(`${label.code}.${a.name}: ${v}`);
  }
  return errs;
}

function fieldRows(fields, imageDate) {
  return Object.entries(fields || {}).map(([name, raw]) => {
    const f = raw && typeof raw === "object" && !Array.isArray(raw) ? raw : { value: raw };
    const n = typeof f.value === "number" ? f.value : null;
    const range = f.normal_range || f.range;
    const out = n !== null && range && ((range.low != null && n < range.low) || (range.high != null && n > range.high));
    let late = Boolean(f.time_deviation);
    if (!late && f.timestamp && imageDate) late = Math.abs(new Date(f.timestamp) - new Date(imageDate)) > 90 * 86400e3;
    return h("tr", { class: out ? "warn" : "" }, h("td", {}, name), h("td", {}, String(f.value ?? ""), f.unit ? ` ${f.unit}` : ""),
      h("td", {}, range ? `[${range.low ?? ""}, ${range.high ?? ""}]` : ""), h("td", {}, out ? t("outOfRange") : "", late ? ` ⚠ ${t("days90")}` : ""));
  });
}

export async function workspace(taskId) {
  const t0 = performance.now();
  const task = await call("GET", `/tasks/${taskId}`, { raw: true }).then(async (r) => ({ ...(await r.json()), etag: r.headers.get("ETag") }));
  // the image download starts at once; the small requests go in parallel beside it
  const imageBytes = call("GET", `/tasks/${taskId}/image`, { raw: true }).then((r) => r.arrayBuffer());
  const large = isLarge(task.image.shape);
  const nz = task.image.shape[0];
  const firstZ = flipsFor(task.image.direction)[2] ? nz - 1 - Math.floor(nz / 2) : Math.floor(nz / 2);
  const previewed = large && localStorage.getItem("aimd.firstSlice") !== "off";
  const firstSlice = previewed ? call("GET", `/tasks/${taskId}/slice?z=${firstZ}`, { raw: true }).then((r) => r.arrayBuffer()) : null;
  const [project, presets, saved, seriesList] = await Promise.all([get(`/projects/${task.project}`), get("/windowing"),
    get(`/tasks/${taskId}/marks`), get(`/tasks/${taskId}/series`)]);
  const state = {
    version: task.draft_version, label: project.labels[0], tool: "navigate", dirty: false, saving: false, conflict: false,
    marks: { objects: saved.objects, spans: saved.spans, links: saved.links, attributes: saved.attributes }, marksVersion: saved.version,
    selected: null, pending: [], timer: null,
  };
  const canvas = h("canvas", { id: "gl" });
  const viewer = new Viewer(canvas);
  const status = h("span", { id: "save-status", class: "status" });
  const err = h("div", { class: "error", id: "ws-error" });
  const right = h("aside", { id: "right" });
  const left = h("aside", { id: "left" });
  const viewerBox = h("div", { class: "viewer", id: "viewer" }, canvas);
  mount(h("div", { class: "ws", id: "workspace", dataset: { task: taskId } }, left, viewerBox, right));

  const preset = task.image.modality === "CT" ? presets.mediastinum : null;
  state.series = "reference";
  const drawn = async (nv, name) => {
    nv.drawScene();
    nv.gl.finish();
    await new Promise((resolve) => requestAnimationFrame(resolve));
    performance.measure(name, { start: t0, end: performance.now() });
  };
  // Large volumes: the full-resolution middle slice comes first (GET /slice, a few hundred kB) and is
  // drawn while the volume downloads; window/level and zoom work on it and are kept when the volume
  // takes its place. Drawing tools wait for the volume.
  let overview = null;
  let plane = null; // coronal / sagittal planes of a large volume
  if (previewed) {
    await viewer.openSlice(await firstSlice, task.image, firstZ);
    if (preset) viewer.window(preset.center, preset.width);
    await drawn(viewer.nv, "aimd:first-slice");
    window.aimdLoading = { viewer };
  }

  async function loadVolume() {
    await viewer.open(await imageBytes, task.image);
    try {
      viewer.setLabels(project.labels);
    } catch (ex) {
      err.textContent = ex.message; // the image stays viewable; drawing is not started
      await drawn(viewer.nv, previewed ? "aimd:volume" : "aimd:first-slice");
      return;
    }
    if (task.draft_version > 0) {
      const draft = await call("GET", `/tasks/${taskId}/draft`, { raw: true });
      viewer.loadMask(await draft.arrayBuffer());
      state.version = Number(draft.headers.get("ETag").replaceAll('"', ""));
    }
    state.savedBitmap = viewer.nv.drawBitmap.slice(); // what the server holds, in display order
    if (preset && !large) viewer.window(preset.center, preset.width);
    viewer.start();
    if (viewer.sliceMode) {
      plane = new PlaneView(viewer, viewerBox);
      plane.onChange = (action) => viewer.onChange(action);
    }
    await drawn(viewer.nv, previewed ? "aimd:volume" : "aimd:first-slice");
    // A block-averaged overview (≤ 0.5 Mi voxels) of a large volume shows axial, coronal and sagittal
    // beside its one-slice display; it comes after the volume, which it would otherwise delay.
    if (large && localStorage.getItem("aimd.overview") !== "off") {
      const ovCanvas = h("canvas", { id: "overview" });
      viewerBox.append(h("div", { class: "overview", id: "overview-box" }, ovCanvas, h("span", { class: "tag", id: "overview-tag" })));
      const r = await call("GET", `/tasks/${taskId}/overview`, { raw: true });
      const f = r.headers.get("X-Overview-Factors").split(",").map(Number);
      overview = new Viewer(ovCanvas, { showRender: false });
      await overview.open(await r.arrayBuffer(), { ...task.image, spacing_zyx: task.image.spacing_zyx.map((sp, i) => sp * f[i]) }, { allowSliceMode: false });
      const wl = viewer.windowNow;
      overview.window(wl.center, wl.width);
      overview.nv.scene.crosshairPos = [...viewer.nv.scene.crosshairPos];
      document.getElementById("overview-tag").textContent = `${t("overviewTag")} ×${f.join("×")}`;
      await drawn(overview.nv, "aimd:first-overview");
    }
  }

  // Vector objects, spans, links and attributes are autosaved like the mask (PUT /marks with If-Match).
  async function saveMarks() {
    if (state.conflict || state.submitted) return;
    if (state.marksSaving) { state.marksAgain = true; return; }
    state.marksSaving = true;
    try {
      const out = await call("PUT", `/tasks/${taskId}/marks`, { json: state.marks, headers: { "If-Match": `"${state.marksVersion}"` } });
      state.marksVersion = out.version;
      performance.mark("aimd:marks-saved");
    } catch (ex) {
      if (ex.status === 409) state.conflict = true; else err.textContent = ex.message;
    }
    state.marksSaving = false;
    showStatus();
    if (state.marksAgain) { state.marksAgain = false; saveMarks(); }
  }
  const keepMarks = () => { clearTimeout(state.marksTimer); state.marksTimer = setTimeout(saveMarks, MARKS_DEBOUNCE_MS); };
  const showStatus = () => {
    if (state.conflict) { status.className = "status error"; status.replaceChildren(t("conflict"), " ", h("button", { onclick: () => location.reload() }, t("reload"))); return; }
    if (!viewer.ready) { status.className = "status warn"; status.textContent = t("loading"); return; }
    status.className = `status ${state.dirty ? "warn" : "ok"}`;
    status.textContent = state.saving ? t("saving") : state.dirty ? t("unsaved") : `${t("saved")} v${state.version}`;
  };

  async function save() {
    if (state.saving || state.conflict || !state.dirty) return;
    state.saving = true; state.dirty = false; showStatus();
    const started = state.changedAt ?? performance.now();
    try {
      // only the box of voxels changed since the saved version goes up (PATCH), applied there by the server;
      // the box is looked for where the pen went (the whole volume after undo, grow-cut, interpolation)
      const t1 = performance.now();
      const within = viewer.takeTouched();
      const patch = patchOf(state.savedBitmap, viewer.nv.drawBitmap, viewer.dims, viewer.flips, within);
      performance.measure("aimd:save-scan", { start: t1, end: performance.now(), detail: { within: Boolean(within) } });
      if (patch) {
        const t2 = performance.now();
        const body = await gzip(writeNpy(viewer.toValues(patch.data), patch.shape));
        const t3 = performance.now();
        performance.measure("aimd:save-gzip", { start: t2, end: t3 });
        const out = await call("PATCH", `/tasks/${taskId}/draft?z=${patch.at.z}&y=${patch.at.y}&x=${patch.at.x}`, { body,
          headers: { "If-Match": `"${state.version}"`, "Content-Type": "application/octet-stream", "Content-Encoding": "gzip" } });
        performance.measure("aimd:save-request", { start: t3, end: performance.now() });
        writeBox(state.savedBitmap, viewer.dims, patch.box, patch.shown);
        state.version = out.draft_version;
        state.lastPatch = { bytes: body.length, shape: patch.shape, at: patch.at };
      }
      performance.measure("aimd:change-to-saved", { start: started, end: performance.now() });
      state.changedAt = null;
      performance.mark("aimd:saved");
    } catch (ex) {
      if (ex.status === 409) state.conflict = true; else { err.textContent = ex.message; state.dirty = true; viewer.touchAll(); }
    }
    state.saving = false;
    showStatus();
    if (state.dirty) schedule();
  }
  function schedule() { clearTimeout(state.timer); state.timer = setTimeout(save, DEBOUNCE_MS); }
  viewer.onChange = (action) => {
    if (plane?.shown && action !== "draw") plane.pullDrawing(); // undo, redo, grow-cut, interpolation
    state.changedAt ??= performance.now(); state.dirty = true; showStatus(); schedule(); renderRight(); };

  viewer.onLocation = (loc) => {
    if (overview) later(() => { overview.nv.scene.crosshairPos = [...viewer.nv.scene.crosshairPos]; overview.nv.drawScene(); });
    if (!["box", "point", "polygon"].includes(state.tool) || !loc?.vox) return;
    if (loc.axCorSag !== undefined && loc.axCorSag !== 0) return; // vector objects live on axial slices
    const v = viewer.apiVoxel(loc.vox.map(Math.round));
    const id = `${state.tool}_${state.marks.objects.length + 1}`;
    const base = { id, label_code: state.label.code };
    if (state.tool === "point") { state.marks.objects.push({ ...base, type: "point", point: v }); state.pending = []; }
    else if (state.tool === "box") {
      state.pending.push(v);
      if (state.pending.length === 2) {
        const [a, b] = state.pending;
        state.pending = [];
        if (a[0] === b[0] || a[1] === b[1]) { toast("box: 0 width"); return; }
        state.marks.objects.push({ ...base, type: "bbox", slice_index: a[2],
          bbox: [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])] });
      }
    } else state.pending.push(v);
    keepMarks(); renderRight();
  };
  function closePolygon() {
    if (state.tool !== "polygon" || state.pending.length < 3) return;
    state.marks.objects.push({ id: `polygon_${state.marks.objects.length + 1}`, label_code: state.label.code, type: "polygon",
      polygon: state.pending.map((p) => [p[0], p[1]]), slice_index: state.pending[0][2] });
    state.pending = []; keepMarks(); renderRight();
  }

  // ---------------------------------------------------------------- series switch (001 §6.4.1)
  // Other series come resampled onto the annotated grid through their stored registration; the drawing
  // stays on that grid. A failed registration is named and the shown series does not change.
  const seriesMsg = h("div", { id: "series-msg", class: "status" });
  const seriesCache = {};
  const regText = (r) => `${r.method} · ${t("overlap")} ${Math.round(100 * r.overlap)} %${r.mattes_mi != null ? ` · MI ${r.mattes_mi.toFixed(3)}` : ""}`;
  async function showSeries(s) {
    if (!viewer.ready) return;
    seriesMsg.className = "status";
    try {
      if (s === "reference") {
        viewer.unblend();
        await unblendPlane();
        viewer.showReference();
        if (preset) applyWL(preset.center, preset.width);
        seriesMsg.textContent = `${t("reference")} (${task.image.modality})`;
      } else {
        if (s.registration.status !== "ok") throw new Error(`${t("regFailed")}: ${s.registration.message}`);
        seriesCache[s.id] ??= await call("GET", `/tasks/${taskId}/series/${s.id}/image`, { raw: true }).then((r) => r.arrayBuffer());
        if (state.blend) {
          // over the annotated image, which keeps its window; the series gets its own range
          viewer.showReference();
          if (preset && state.series !== "reference") applyWL(preset.center, preset.width);
          const voxels = parseNpy(seriesCache[s.id]).data;
          const range = rangeOf(voxels);
          if (viewer.sliceMode) {
            // a large volume: the series is blended on the full-resolution plane shown (axial by default)
            plane.blend = { img: flip(voxels, viewer.dims, viewer.flips), range, opacity: state.opacity };
            await plane.show(plane.shown ? plane.view : "axial");
          } else await viewer.blend(seriesCache[s.id], state.opacity, range);
          seriesMsg.textContent = `${s.series_key} (${s.modality}) ${t("blended")} ${Math.round(100 * state.opacity)} % · ${regText(s.registration)}`;
        } else {
          viewer.unblend();
          await unblendPlane();
          viewer.showVoxels(seriesCache[s.id]);
          if (plane?.shown) await plane.load();
          const [lo, hi] = rangeOf(viewer.nv.volumes[0].img);
          applyWL((lo + hi) / 2, Math.max(1, hi - lo));
          seriesMsg.textContent = `${s.series_key} (${s.modality}) · ${regText(s.registration)}`;
        }
      }
      state.series = s === "reference" ? "reference" : s.series_key;
      performance.mark("aimd:series");
    } catch (ex) {
      seriesMsg.className = "status error";
      seriesMsg.textContent = ex.message;
    }
    renderLeft();
  }
  // The plane view without a blended series (the axial plane gives way to the one-slice display).
  async function unblendPlane() {
    if (!plane?.blend) return;
    plane.blend = null;
    if (plane.view === "axial") plane.hide();
    else if (plane.shown) await plane.load();
  }
  // Sampled range of a series' voxels (its window when shown).
  function rangeOf(img) {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < img.length; i += 7) { if (img[i] < lo) lo = img[i]; if (img[i] > hi) hi = img[i]; }
    return [lo, hi];
  }
  state.blend = false;
  state.opacity = 0.5;
  function seriesPane() {
    if (!seriesList.series.length) return [];
    const button = (key, label, s, failed) => h("button", { class: `series ${state.series === key ? "active" : ""} ${failed ? "warn" : ""}`,
      dataset: { series: key }, onclick: () => showSeries(s) }, label);
    const shown = () => seriesList.series.find((s) => s.series_key === state.series);
    const blend = h("input", { id: "series-blend", type: "checkbox", checked: state.blend,
      onchange: (e) => { state.blend = e.target.checked; if (shown()) showSeries(shown()); else renderLeft(); } });
    const opacity = h("input", { id: "series-opacity", type: "range", min: 0, max: 100, value: Math.round(100 * state.opacity),
      oninput: (e) => {
        state.opacity = Number(e.target.value) / 100;
        viewer.setBlendOpacity(state.opacity);
        plane?.setOpacity(state.opacity);
        performance.mark("aimd:blend-opacity");
      } });
    return [h("h3", {}, t("series")), h("div", { class: "tools" },
      button("reference", `${t("reference")} · ${task.image.modality}`, "reference", false),
      seriesList.series.map((s) => button(s.series_key, `${s.series_key} · ${s.modality}`, s, s.registration.status !== "ok"))),
    h("label", { class: "blend" }, blend, ` ${t("blend")} `, opacity), seriesMsg];
  }

  // ---------------------------------------------------------------- left pane: labels, tools, window
  const toolButtons = {};
  function setTool(name) {
    state.tool = name; state.pending = [];
    viewer.tool(name, state.label.value);
    plane?.arm();
    if (["box", "point", "polygon"].includes(name)) { plane?.hide(); viewer.layout("axial"); }
    for (const [k, b] of Object.entries(toolButtons)) b.classList.toggle("active", k === name);
  }
  function setLabel(l) { state.label = l; setTool(state.tool); renderLeft(); }
  const center = h("input", { id: "wl-center", type: "number", step: 10, size: 6 });
  const width = h("input", { id: "wl-width", type: "number", step: 10, size: 6 });
  // the overview follows window/level and the slice a moment later (its 3-D texture is not on the fast path)
  const later = (fn) => { clearTimeout(state.overviewTimer); state.overviewTimer = setTimeout(fn, 300); };
  const applyWL = (c, w) => {
    viewer.window(c, w); plane?.window(c - w / 2, c + w / 2); center.value = Math.round(c); width.value = Math.round(w); performance.mark("aimd:window");
    if (overview) later(() => { overview.window(c, w); overview.nv.scene.crosshairPos = [...viewer.nv.scene.crosshairPos]; overview.nv.drawScene(); });
  };
  function renderLeft() {
    for (const name of ["navigate", "brush", "eraser", "fill", "box", "point", "polygon"]) {
      toolButtons[name] = h("button", { id: `tool-${name}`, class: state.tool === name ? "active" : "", onclick: () => setTool(name) }, t(name));
    }
    const wl = viewer.windowNow;
    if (wl) { center.value = Math.round(wl.center); width.value = Math.round(wl.width); }
    left.replaceChildren(...[
      h("h3", {}, t("labels")),
      project.labels.map((l, i) => h("div", { class: `label ${l === state.label ? "sel" : ""}`, dataset: { value: l.value }, onclick: () => setLabel(l) },
        h("span", { class: "swatch", style: { background: css(l.value) } }), `${i + 1}. ${l.code} — ${labelName(l)}`)),
      h("h3", {}, t("tools")), h("div", { class: "tools" }, Object.values(toolButtons)),
      h("div", { class: "tools" },
        h("button", { id: "tool-undo", onclick: () => viewer.undo() }, t("undo")), h("button", { id: "tool-redo", onclick: () => viewer.redo() }, t("redo")),
        h("button", { id: "tool-growcut", onclick: () => viewer.growCut() }, t("growcut")),
        h("button", { id: "tool-interp", onclick: () => toast(`${viewer.interpolate(state.label.value)} voxels`) }, t("interp"))),
      seriesPane(),
      h("h3", {}, t("window")),
      h("div", { class: "tools" }, Object.entries(presets).map(([name, p]) => h("button", { class: "preset", dataset: { preset: name }, onclick: () => applyWL(p.center, p.width) }, name))),
      h("div", {}, `${t("center")} `, center, ` ${t("width")} `, width),
      h("h3", {}, t("view")),
      h("div", { class: "tools" }, ["multi", "axial", "coronal", "sagittal", "render"].map((k) => h("button", { class: "layout", dataset: { layout: k },
          disabled: viewer.sliceMode && (k === "multi" || k === "render") && !overview,
          title: viewer.sliceMode && k !== "axial" ? t("sliceMode") : undefined, onclick: () => showLayout(k) }, t(k))),
        h("button", { onclick: () => viewer.zoom(1.25) }, "+"), h("button", { onclick: () => viewer.zoom(0.8) }, "−")),
      h("h3", {}, t("shortcuts")), h("div", {}, SHORTCUTS.map(([k, name]) => h("div", {}, h("kbd", {}, k), " ", t(name)))),
    ].flat(Infinity));
  }
  // A large volume: axial on the main canvas; coronal and sagittal as full-resolution planes over it (the
  // overview inset follows); multi-planar and 3-D in the overview only.
  function showLayout(k) {
    if (!viewer.sliceMode) { viewer.layout(k); return; }
    overview?.layout(k);
    if (k === "coronal" || k === "sagittal") plane?.show(k);
    else if (k === "axial" && plane?.blend) plane.show("axial");
    else if (k === "axial") plane?.hide();
  }
  center.onchange = width.onchange = () => applyWL(Number(center.value), Number(width.value));

  // ---------------------------------------------------------------- right pane: report, fields, objects, QC
  const reportEl = h("div", { class: "report", id: "report" });
  function renderReport() {
    const text = task.report_text || "";
    const spans = [...state.marks.spans].sort((a, b) => a.start - b.start);
    const linked = new Set([...Object.values(state.marks.links).flat(), ...state.marks.objects.flatMap((o) => o.links || [])]);
    const parts = [];
    let at = 0;
    for (const s of spans) {
      if (s.start < at) continue;
      parts.push(text.slice(at, s.start), h("mark", { class: linked.has(s.id) ? "linked" : "", dataset: { span: s.id }, title: s.id }, text.slice(s.start, s.end)));
      at = s.end;
    }
    parts.push(text.slice(at));
    reportEl.replaceChildren(...parts);
  }
  function selectionOffsets() {
    const sel = window.getSelection();
    if (!sel.rangeCount || sel.isCollapsed || !reportEl.contains(sel.anchorNode)) return null;
    const r = sel.getRangeAt(0);
    const pre = document.createRange();
    pre.setStart(reportEl, 0);
    pre.setEnd(r.startContainer, r.startOffset);
    const start = pre.toString().length;
    return { start, end: start + r.toString().length };
  }
  function linkSelection() {
    const off = selectionOffsets();
    if (!off) { toast(t("selectText")); return; }
    if (!state.selected) { toast("→ finding?"); return; }
    const id = `span_${state.marks.spans.length + 1}`;
    state.marks.spans.push({ id, start: off.start, end: off.end, text: (task.report_text || "").slice(off.start, off.end), semantic_type: "finding" });
    if (state.selected.kind === "mask") (state.marks.links[state.selected.value] ||= []).push(id);
    else state.marks.objects.find((o) => o.id === state.selected.id).links = [...(state.marks.objects.find((o) => o.id === state.selected.id).links || []), id];
    keepMarks(); renderRight();
  }
  function presentValues() {
    const bm = viewer.nv.drawBitmap;
    if (!bm) return [];
    const seen = new Uint8Array(256);
    for (let i = 0; i < bm.length; i++) seen[bm[i]] = 1;
    return project.labels.filter((l) => seen[viewer.drawIndex(l.value)]);
  }
  function attributeForm(l) {
    const vals = (state.marks.attributes[l.value] ||= {});
    return (l.attributes || []).map((a) => {
      const set = (e) => { vals[a.name] = a.kind === "number" || a.kind === "integer" ? (e.target.value === "" ? "" : Number(e.target.value)) : e.target.value; keepMarks(); };
      const input = a.kind === "enum"
        ? h("select", { onchange: set, dataset: { attr: a.name } }, h("option", { value: "" }, "—"), a.values.map((e) => h("option", { value: e.code ?? e.value, selected: (e.code ?? e.value) === vals[a.name] }, e.code ?? e.value)))
        : h("input", { value: vals[a.name] ?? "", onchange: set, dataset: { attr: a.name }, type: a.kind === "number" || a.kind === "integer" ? "number" : "text", min: a.minimum ?? undefined, max: a.maximum ?? undefined });
      return h("div", {}, `${a.name}${a.required ? " *" : ""}${a.unit ? ` (${a.unit})` : ""} `, input);
    });
  }
  function renderRight() {
    renderReport();
    const present = presentValues();
    const findings = [
      ...present.map((l) => ({ kind: "mask", value: String(l.value), label: l, text: `${l.code} mask` })),
      ...state.marks.objects.map((o) => ({ kind: "object", id: o.id, label: project.labels.find((l) => l.code === o.label_code), text: `${o.id} ${o.label_code} ${JSON.stringify(o.bbox || o.point || o.polygon)}`, obj: o })),
    ];
    const isSel = (f) => state.selected && state.selected.kind === f.kind && (f.kind === "mask" ? state.selected.value === f.value : state.selected.id === f.id);
    right.replaceChildren(...[
      h("div", {}, status, " ", h("button", { id: "submit", class: "primary", onclick: submit }, t("submit"))), err,
      h("h3", {}, t("report")), reportEl,
      h("button", { id: "link-span", onclick: linkSelection }, t("link")),
      h("h3", {}, t("objects")),
      h("div", { id: "findings" }, findings.map((f) => h("div", { class: `label finding-item ${isSel(f) ? "sel" : ""}`, dataset: { kind: f.kind, id: f.id || f.value },
        onclick: () => { state.selected = f; renderRight(); } },
        h("span", { class: "swatch", style: { background: f.label ? css(f.label.value) : "#888" } }), f.text,
        ` ${((f.kind === "mask" ? state.marks.links[f.value] : f.obj.links) || []).map((s) => `↔${s}`).join(" ")}`))),
      state.pending.length ? h("div", { class: "warn" }, `… ${state.pending.length} pt`, state.tool === "polygon" ? h("button", { onclick: closePolygon }, t("closeShape")) : "") : "",
      h("h3", {}, t("attributes")), present.map((l) => h("div", { class: "card attr-form", dataset: { value: l.value } }, h("strong", {}, l.code), attributeForm(l))),
      h("h3", {}, t("fields")), h("table", { id: "fields" }, fieldRows(task.fields, task.fields?.exam_date || task.fields?.study_date)),
      h("div", { id: "qc" }),
    ].flat(Infinity));
    showStatus();
  }

  async function submit() {
    err.textContent = "";
    clearTimeout(state.timer);
    if (state.dirty) { await save(); }
    clearTimeout(state.marksTimer);
    const present = presentValues();
    const errs = present.flatMap((l) => attributeErrors(l, state.marks.attributes[l.value]));
    if (errs.length) { err.textContent = errs.join("\n"); return; }
    const attributes = Object.fromEntries(present.map((l) => [String(l.value), state.marks.attributes[l.value] || {}]));
    const valueOf = Object.fromEntries(project.labels.map((l) => [l.code, l.value]));
    const objects = state.marks.objects.map((o) => ({ ...o, attributes: o.attributes || state.marks.attributes[valueOf[o.label_code]] || {} }));
    const objErrs = objects.flatMap((o) => attributeErrors(project.labels.find((l) => l.code === o.label_code), o.attributes).map((e) => `${o.id}: ${e}`));
    if (objErrs.length) { err.textContent = objErrs.join("\n"); return; }
    try {
      const out = await call("POST", `/tasks/${taskId}/submit`, { json: { attributes, objects, spans: state.marks.spans, links: state.marks.links },
        headers: { "Idempotency-Key": `ws-${taskId}-v${state.version}` } });
      state.submitted = true;
      right.querySelector("#qc").replaceChildren(h("div", { class: "ok card", id: "submitted" }, `${t("submitted")} · ${t("qc")}: ${out.qc.findings} / errors ${out.qc.errors} · → ${out.routed.next}`));
    } catch (ex) {
      const findings = ex.body?.findings || [];
      right.querySelector("#qc").replaceChildren(...[h("h3", {}, t("qc")), findings.map((f) => h("div", { class: `finding ${f.severity}` }, `${f.code}: ${f.message}`))].flat());
      err.textContent = ex.message;
      keepMarks(); // not submitted: the marks stay a draft on the server
    }
  }

  function onKey(e) {
    if (e.target.matches("input, textarea, select")) return;
    const k = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && k === "z") { e.preventDefault(); viewer.undo(); return; }
    if ((e.ctrlKey || e.metaKey) && k === "y") { e.preventDefault(); viewer.redo(); return; }
    const tools = { b: "brush", e: "eraser", f: "fill", n: "navigate", x: "box", p: "point", g: "polygon" };
    if (tools[k]) setTool(tools[k]);
    else if (/^[1-9]$/.test(k) && project.labels[Number(k) - 1]) setLabel(project.labels[Number(k) - 1]);
    else if (k === "arrowup" || k === "pageup") { if (plane?.shown) plane.slice(1); else viewer.slice(1); }
    else if (k === "arrowdown" || k === "pagedown") { if (plane?.shown) plane.slice(-1); else viewer.slice(-1); }
    else if (k === "+" || k === "=") viewer.zoom(1.25);
    else if (k === "-") viewer.zoom(0.8);
    else if (k === "enter") closePolygon();
    else if (k === "w") { const names = Object.keys(presets); const i = (names.indexOf(state.preset) + 1) % names.length; state.preset = names[i]; applyWL(presets[names[i]].center, presets[names[i]].width); }
  }
  document.addEventListener("keydown", onKey);
  const overlay = new VectorOverlay(viewer, viewerBox);
  const valueOf = Object.fromEntries(project.labels.map((l) => [l.code, l.value]));
  overlay.objects = () => state.marks.objects;
  overlay.pending = () => state.pending;
  overlay.valueOf = (code) => valueOf[code] ?? 1;
  renderLeft();
  renderRight();
  await loadVolume();
  renderLeft();
  renderRight();
  delete window.aimdLoading;
  window.aimdWorkspace = { viewer, state, save, submit, setTool, applyWL, overlay, overview, plane };
  return () => { document.removeEventListener("keydown", onKey); clearTimeout(state.timer); clearTimeout(state.marksTimer); clearTimeout(state.overviewTimer); overlay.stop(); delete window.aimdWorkspace; };
}
