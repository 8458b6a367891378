// NiiVue wrapper: one CT volume, a label drawing in the API's voxel order, tools and undo/redo.
import { Niivue, SHOW_RENDER, SLICE_TYPE } from "@niivue/niivue";
import { flip, flipsFor, niftiFromArray, parseNpy } from "./npy.js";

const PALETTE = [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [170, 110, 40]];
export const colour = (value) => PALETTE[(value - 1) % PALETTE.length];
export const css = (value) => `rgb(${colour(value).join(",")})`;

// Above this many voxels the volume is shown one axial slice at a time (NiiVue's 2-D slice path): the
// current slice is windowed on the CPU and uploaded alone, so opening, slice and window/level changes cost
// one slice instead of re-rendering the whole volume into a 3-D texture (minutes under software WebGL).
// The drawing stays the full-resolution bitmap on the original grid; only the shown slice is uploaded.
export const SLICE_MODE_VOXELS = 8 * 1024 * 1024;
export const MAX_LABELS = 255;

export const isLarge = (shape) => shape.reduce((a, b) => a * b, 1) > Number(localStorage.getItem("aimd.sliceModeVoxels") || SLICE_MODE_VOXELS);

export class Viewer {
  // showRender false: the multiplanar view leaves out the 3-D render (its own button still shows it).
  constructor(canvas, { showRender = true } = {}) {
    this.canvas = canvas;
    this.nv = new Niivue({
      backColor: [0, 0, 0, 1], show3Dcrosshair: true, isRadiologicalConvention: true,
      multiplanarShowRender: showRender ? SHOW_RENDER.ALWAYS : SHOW_RENDER.NEVER, dragAndDropEnabled: false, logLevel: "error",
      isColorbar: false, crosshairColor: [0.2, 0.8, 1, 1],
    });
    this.redoStack = [];
    this.onChange = () => {};
    this.onLocation = () => {};
  }

  grid([nz, ny, nx], image, allowSliceMode) {
    this.dims = [nx, ny, nz];
    this.flips = flipsFor(image.direction);
    this.spacing = [...image.spacing_zyx].reverse(); // x, y, z
    this.sliceMode = allowSliceMode && isLarge([nz, ny, nx]);
  }

  // The first picture of a large image: its full-resolution axial slice `apiZ` (GET /tasks/{id}/slice) as
  // a one-slice volume placed where that slice lies in the image, shown while the volume downloads.
  // open() then puts the volume in its place on the same slice, keeping window/level, zoom and pan.
  async openSlice(npyBuffer, image, apiZ) {
    const arr = parseNpy(npyBuffer);
    this.grid(image.shape, image, true);
    const [nx, ny, nz] = this.dims;
    this.previewZ = this.flips[2] ? nz - 1 - apiZ : apiZ;
    await this.nv.attachToCanvas(this.canvas);
    if (this.sliceMode) this.enterSliceMode();
    const [fx, fy] = this.flips;
    const nii = niftiFromArray(arr.data, [nx, ny, 1], this.spacing, arr.niftiType, arr.bitpix,
      { flips: [fx, fy, false], origin: [0, 0, this.previewZ * this.spacing[2]] });
    await this.nv.loadFromArrayBuffer(nii, "slice.nii");
    this.nv.setSliceType(SLICE_TYPE.AXIAL);
  }

  // allowSliceMode false: always the whole volume in 3-D (the downsampled overview of a large image).
  async open(npyBuffer, image, { allowSliceMode = true } = {}) {
    const arr = parseNpy(npyBuffer);
    const preview = this.previewZ !== undefined && this.nv.volumes.length ? this.nv.volumes[0] : null;
    if (!preview) {
      this.grid(arr.shape, image, allowSliceMode);
      await this.nv.attachToCanvas(this.canvas);
      if (this.sliceMode) this.enterSliceMode();
    }
    const keep = preview && { pan: [...this.nv.scene.pan2Dxyzmm], window: [preview.cal_min, preview.cal_max] };
    const nii = niftiFromArray(arr.data, this.dims, this.spacing, arr.niftiType, arr.bitpix, { flips: this.flips, window: keep?.window });
    if (preview) {
      // the volume takes the preview's place (no second layer blended over a 3-D texture); the crosshair
      // goes to the previewed slice before the volume's first slice is windowed
      this.nv.volumes = [];
      this.nv.scene.crosshairPos = [this.nv.scene.crosshairPos[0], this.nv.scene.crosshairPos[1], (this.previewZ + 0.5) / this.dims[2]];
    }
    await this.nv.loadFromArrayBuffer(nii, "image.nii");
    this.nv.setSliceType(this.sliceMode ? SLICE_TYPE.AXIAL : SLICE_TYPE.MULTIPLANAR);
    if (keep) {
      this.nv.scene.pan2Dxyzmm = keep.pan;
      this.window((keep.window[0] + keep.window[1]) / 2, keep.window[1] - keep.window[0]);
    }
    this.previewZ = undefined;
    this.nv.createEmptyDrawing();
    this.nv.onDrawingChanged = (action) => {
      if (action !== "undo") this.redoStack = [];
      if (action !== "draw") this.touchAll(); // undo, redo, grow-cut, interpolation: anywhere
      this.onChange(action);
    };
    this.trackPen();
    this.nv.onLocationChange = (loc) => { if (this.sliceMode) this.followSlice(); this.onLocation(loc); };
    this.nv.setDrawingEnabled(false);
  }

  // Where the pen went since takeTouched(): every voxel a brush, eraser or fill stroke changes lies in the
  // box of its points widened by the pen size, so the autosave compares that box, not 52 M voxels.
  trackPen() {
    const nv = this.nv;
    const pt = nv.drawPt.bind(nv);
    const line = nv.drawPenLine.bind(nv);
    nv.drawPt = (x, y, z, ...rest) => { this.touch([x, y, z]); pt(x, y, z, ...rest); };
    nv.drawPenLine = (a, b, ...rest) => { this.touch(a); this.touch(b); line(a, b, ...rest); };
    this.touched = null;
  }

  touch(p) {
    if (this.touched === "all") return;
    const r = Math.ceil(this.nv.opts.penSize || 1);
    const t = this.touched ?? [Infinity, Infinity, Infinity, -Infinity, -Infinity, -Infinity];
    for (let i = 0; i < 3; i++) {
      t[i] = Math.max(0, Math.min(t[i], Math.round(p[i]) - r));
      t[i + 3] = Math.min(this.dims[i] - 1, Math.max(t[i + 3], Math.round(p[i]) + r));
    }
    this.touched = t;
  }

  touchAll() { this.touched = "all"; }

  // The box to compare for the next save (null: the whole volume), and a fresh start.
  takeTouched() {
    const t = this.touched;
    this.touched = null;
    return t === "all" ? null : t;
  }

  // Drawing starts (the tool picked meanwhile is armed) once the caller has put the saved draft in.
  start() {
    this.ready = true;
    if (this.toolNow) this.tool(...this.toolNow);
  }

  // Slice mode: any dimension above max3D sends NiiVue down its 2-D texture path; the drawing texture
  // is refreshed one slice at a time (NiiVue's own refresh also scans the whole bitmap each time).
  enterSliceMode() {
    const nv = this.nv;
    nv.uiData.max3D = Math.min(...this.dims) - 1;
    const update = nv.updateGLVolume.bind(nv);
    nv.updateGLVolume = () => { this.shownZ = this.currentZ(); update(); };
    nv.refreshDrawing = (isForceRedraw = true) => {
      if (nv.drawBitmap && nv.drawTexture) {
        const [nx, ny] = this.dims;
        const z = this.currentZ();
        nv.gl.activeTexture(nv.gl.TEXTURE7);
        nv.gl.bindTexture(nv.gl.TEXTURE_2D, nv.drawTexture);
        nv.gl.texSubImage2D(nv.gl.TEXTURE_2D, 0, 0, 0, nx, ny, nv.gl.RED, nv.gl.UNSIGNED_BYTE, nv.drawBitmap.subarray(z * nx * ny, (z + 1) * nx * ny));
      }
      if (isForceRedraw) nv.drawScene();
    };
  }

  currentZ() {
    if (!this.nv.volumes[0]?.dims) return 0;
    const z = Math.round(this.nv.frac2vox(this.nv.scene.crosshairPos)[2]);
    return Math.min(Math.max(z, 0), this.dims[2] - 1);
  }

  // A slice reached by scrolling or clicking (not through moveCrosshairInVox) is windowed and shown.
  followSlice() {
    if (this.currentZ() === this.shownZ) return;
    this.nv.updateGLVolume();
    this.nv.refreshDrawing(true);
  }

  // Show other voxels on the same grid (a series resampled onto the annotated image by the server): the
  // drawing, the crosshair and the zoom stay; the window is set by the caller.
  showVoxels(npyBuffer) {
    const arr = parseNpy(npyBuffer);
    const [nx, ny, nz] = this.dims;
    if (arr.shape.join() !== [nz, ny, nx].join()) throw new Error(`series grid ${arr.shape} ≠ image grid ${[nz, ny, nx]}`);
    const v = this.nv.volumes[0];
    this.referenceVoxels ??= v.img.slice();
    v.img.set(flip(arr.data, this.dims, this.flips));
    this.nv.updateGLVolume();
  }

  showReference() {
    if (!this.referenceVoxels) return;
    this.nv.volumes[0].img.set(this.referenceVoxels);
    this.nv.updateGLVolume();
  }

  // Blend a series (resampled onto this grid by the server) over the image as a second layer in a colour
  // map of its own, windowed to [lo, hi], at `opacity` (0..1); the drawing stays above both. Not in the
  // one-slice display of large volumes (NiiVue's layers there would need the whole volume in 3-D).
  async blend(npyBuffer, opacity, [lo, hi]) {
    if (this.sliceMode) throw new Error("blending needs the 3-D display: this image is shown one slice at a time");
    const arr = parseNpy(npyBuffer);
    const [nx, ny, nz] = this.dims;
    if (arr.shape.join() !== [nz, ny, nx].join()) throw new Error(`series grid ${arr.shape} ≠ image grid ${[nz, ny, nx]}`);
    this.unblend();
    const nii = niftiFromArray(arr.data, this.dims, this.spacing, arr.niftiType, arr.bitpix, { flips: this.flips, window: [lo, hi] });
    await this.nv.loadFromArrayBuffer(nii, "series.nii");
    const layer = this.nv.volumes[1];
    layer.colormap = "warm";
    layer.opacity = opacity;
    this.nv.updateGLVolume();
  }

  setBlendOpacity(opacity) {
    if (this.nv.volumes[1]) this.nv.setOpacity(1, opacity);
  }

  unblend() {
    while (this.nv.volumes.length > 1) this.nv.removeVolume(this.nv.volumes[this.nv.volumes.length - 1]);
  }

  // NiiVue's drawing is an 8-bit bitmap: the project's label values (its taxonomy's, up to 65535) are drawn
  // as indices 1..N in the labels' order and mapped back when the drawing is read (mask(), saves) or
  // loaded (setMask); more than 255 labels cannot be drawn and are refused.
  setLabels(labels) {
    if (labels.length > MAX_LABELS) {
      throw new Error(`the project has ${labels.length} labels; the drawing holds at most ${MAX_LABELS} (an 8-bit bitmap): ` +
        "split the taxonomy over projects of at most 255 labels");
    }
    const top = Math.max(0, ...labels.map((l) => l.value));
    this.valueOfIndex = Uint16Array.from([0, ...labels.map((l) => l.value)]);
    this.indexOfValue = new Uint8Array(top + 1);
    labels.forEach((l, i) => { this.indexOfValue[l.value] = i + 1; });
    this.wide = top > 255; // saved as uint16
    const cmap = { R: [0], G: [0], B: [0], A: [0], I: [0], labels: ["background"] };
    labels.forEach((l, i) => {
      const [r, g, b] = colour(l.value);
      cmap.R.push(r); cmap.G.push(g); cmap.B.push(b); cmap.A.push(255); cmap.I.push(i + 1); cmap.labels.push(l.code);
    });
    this.cmap = cmap;
    this.nv.setDrawColormap(cmap);
    this.nv.setDrawOpacity(0.6);
  }

  // The draw index of label `value` (the value itself before setLabels).
  drawIndex(value) { return this.indexOfValue ? this.indexOfValue[value] ?? 0 : value; }

  // Label values of draw indices (uint16 when a label value exceeds 255).
  toValues(indices) {
    if (!this.valueOfIndex) return indices;
    const out = new (this.wide ? Uint16Array : Uint8Array)(indices.length);
    const lut = this.valueOfIndex;
    for (let i = 0; i < indices.length; i++) out[i] = lut[indices[i]];
    return out;
  }

  // Draw indices of label values; a value the project does not list is refused, naming it.
  toIndices(values) {
    if (!this.indexOfValue) return values instanceof Uint8Array ? values : Uint8Array.from(values);
    const out = new Uint8Array(values.length);
    const lut = this.indexOfValue;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v && !lut[v]) throw new Error(`the mask holds label value ${v}, which the project's labels do not list`);
      out[i] = v ? lut[v] : 0;
    }
    return out;
  }

  window(center, width) {
    const v = this.nv.volumes[0];
    v.cal_min = center - width / 2;
    v.cal_max = center + width / 2;
    this.nv.updateGLVolume();
  }

  get windowNow() {
    const v = this.nv.volumes[0];
    if (!v) return null;
    return { center: (v.cal_min + v.cal_max) / 2, width: v.cal_max - v.cal_min };
  }

  // Tools picked before the volume has arrived are armed when it has.
  tool(name, value) {
    this.toolNow = [name, value];
    if (!this.ready) return;
    const nv = this.nv;
    if (name === "navigate" || name === "box" || name === "point" || name === "polygon") {
      nv.setDrawingEnabled(false);
      return;
    }
    nv.setDrawingEnabled(true);
    if (name === "brush") nv.setPenValue(this.drawIndex(value), false);
    else if (name === "eraser") nv.setPenValue(0, false);
    else if (name === "fill") nv.setPenValue(this.drawIndex(value), true);
  }

  growCut() { if (!this.ready) return; this.touchAll(); this.nv.drawGrowCut(); this.onChange("growcut"); }

  undo() {
    if (!this.nv.drawBitmap) return;
    this.redoStack.push(this.nv.drawBitmap.slice());
    this.nv.drawUndo();
  }

  redo() {
    const next = this.redoStack.pop();
    if (!next) return;
    this.nv.drawBitmap.set(next);
    this.touchAll();
    this.nv.drawAddUndoBitmap();
    this.nv.refreshDrawing(true);
    this.onChange("redo");
  }

  // The drawing in the API's (z, y, x) order, as label values.
  mask() { return this.toValues(flip(this.nv.drawBitmap, this.dims, this.flips)); }

  loadMask(npyBuffer) {
    const arr = parseNpy(npyBuffer);
    this.setMask(arr.data);
  }

  setMask(data) {
    const bm = flip(this.toIndices(data), this.dims, this.flips);
    this.nv.drawBitmap.set(bm);
    this.nv.drawClearAllUndoBitmaps();
    this.nv.drawAddUndoBitmap();
    this.nv.refreshDrawing(true);
  }

  // Fill the axial slices between two drawn slices of label `value` by blending their signed masks.
  interpolate(label) {
    if (!this.ready) return 0;
    const value = this.drawIndex(label);
    this.touchAll();
    const [nx, ny, nz] = this.dims;
    const bm = this.nv.drawBitmap;
    const plane = nx * ny;
    const drawn = [];
    for (let z = 0; z < nz; z++) {
      const sl = bm.subarray(z * plane, (z + 1) * plane);
      if (sl.some((v) => v === value)) drawn.push(z);
    }
    let filled = 0;
    for (let i = 0; i + 1 < drawn.length; i++) {
      const a = drawn[i];
      const b = drawn[i + 1];
      for (let z = a + 1; z < b; z++) {
        const w = (z - a) / (b - a);
        for (let p = 0; p < plane; p++) {
          const inA = bm[a * plane + p] === value ? 1 : 0;
          const inB = bm[b * plane + p] === value ? 1 : 0;
          if ((1 - w) * inA + w * inB >= 0.5 && bm[z * plane + p] === 0) { bm[z * plane + p] = value; filled++; }
        }
      }
    }
    this.nv.drawAddUndoBitmap();
    this.nv.refreshDrawing(true);
    this.onChange("interpolate");
    return filled;
  }

  // Display voxel (RAS order) → API voxel (x, y, z).
  apiVoxel(vox) {
    const [nx, ny, nz] = this.dims;
    const [fx, fy, fz] = this.flips;
    return [fx ? nx - 1 - vox[0] : vox[0], fy ? ny - 1 - vox[1] : vox[1], fz ? nz - 1 - vox[2] : vox[2]];
  }

  // Show axial slice z of the API's voxel order.
  goToSlice(z) {
    const target = this.apiVoxel([0, 0, z])[2];
    this.slice(target - this.currentZ());
  }

  // Page position of API voxel (x, y) on the shown axial slice (where a stroke there starts).
  screenOf(x, y) {
    return this.screenAt([x, y, this.apiVoxel([0, 0, this.currentZ()])[2]], "axial");
  }

  // Page position of API voxel [x, y, z] in the axial, coronal or sagittal view shown.
  screenAt(xyz, view) {
    const nv = this.nv;
    const type = { axial: SLICE_TYPE.AXIAL, coronal: SLICE_TYPE.CORONAL, sagittal: SLICE_TYPE.SAGITTAL }[view];
    const hit = nv.frac2canvasPosWithTile(nv.vox2frac(this.apiVoxel(xyz)), type);
    const pos = hit?.pos;
    if (!pos) return null;
    const r = this.canvas.getBoundingClientRect();
    const dpr = nv.uiData.dpr || 1;
    return [r.left + pos[0] / dpr, r.top + pos[1] / dpr];
  }

  // The crosshair as an API voxel [x, y, z].
  crosshair() { return this.apiVoxel(this.nv.frac2vox(this.nv.scene.crosshairPos).map(Math.round)); }

  zoom(factor) {
    const p = this.nv.scene.pan2Dxyzmm;
    this.nv.setPan2Dxyzmm([p[0], p[1], p[2], Math.max(0.2, p[3] * factor)]);
  }

  slice(delta) {
    if (!this.ready) return;
    if (!this.sliceMode) { this.nv.moveCrosshairInVox(0, 0, delta); return; }
    const nv = this.nv;
    const v = nv.frac2vox(nv.scene.crosshairPos);
    v[2] = Math.min(Math.max(Math.round(v[2]) + delta, 0), this.dims[2] - 1);
    nv.scene.crosshairPos = nv.vox2frac(v);
    this.followSlice();
    nv.createOnLocationChange();
  }

  layout(kind) {
    if (this.sliceMode && kind !== "axial") return false;
    const map = { multi: SLICE_TYPE.MULTIPLANAR, axial: SLICE_TYPE.AXIAL, coronal: SLICE_TYPE.CORONAL,
      sagittal: SLICE_TYPE.SAGITTAL, render: SLICE_TYPE.RENDER };
    this.nv.setSliceType(map[kind]);
    return true;
  }
}
