// Full-resolution planes of a large volume (shown one axial slice at a time): the coronal or sagittal plane
// through the crosshair — or the axial one with a series blended over it — is cut from the volume in the
// page and shown by a NiiVue of its own, over the main canvas, as a one-plane volume at its place in the
// image, with the plane of the drawing (and of the series, as a second layer at an opacity). A stroke there
// is written back into the volume's drawing and autosaved like an axial one (the delta box is that plane).
import { Niivue, SLICE_TYPE } from "@niivue/niivue";
import { niftiFromArray, niftiTypeOf } from "./npy.js";

export class PlaneView {
  constructor(viewer, host) {
    this.viewer = viewer;
    this.canvas = document.createElement("canvas");
    this.canvas.id = "plane";
    Object.assign(this.canvas.style, { position: "absolute", left: "0", top: "0", width: "100%", height: "100%", display: "none" });
    host.append(this.canvas);
    this.view = null;
    this.blend = null; // { img (display order, the volume's grid), range: [lo, hi], opacity }
    this.onChange = () => {};
  }

  get shown() { return this.view !== null; }

  // Show the axial, coronal or sagittal plane through the crosshair.
  async show(view) {
    const v = this.viewer;
    if (!this.nv) {
      this.canvas.style.display = "block";
      this.nv = new Niivue({ backColor: [0, 0, 0, 1], isRadiologicalConvention: true, dragAndDropEnabled: false,
        logLevel: "error", isColorbar: false, crosshairColor: [0.2, 0.8, 1, 1] });
      await this.nv.attachToCanvas(this.canvas);
    }
    this.canvas.style.display = "block";
    this.view = view;
    const vox = v.nv.frac2vox(v.nv.scene.crosshairPos).map(Math.round);
    this.at = vox[{ axial: 2, coronal: 1, sagittal: 0 }[view]];
    await this.load();
  }

  hide() {
    if (!this.shown) return;
    if (this.view === "axial") this.viewer.slice(this.at - this.viewer.currentZ()); // stay on that slice
    this.view = null;
    this.canvas.style.display = "none";
    this.viewer.nv.refreshDrawing(true);
  }

  // Move the plane by `delta` voxels along its normal.
  async slice(delta) {
    const n = this.viewer.dims[{ axial: 2, coronal: 1, sagittal: 0 }[this.view]];
    const at = Math.min(Math.max(this.at + delta, 0), n - 1);
    if (at === this.at) return;
    this.at = at;
    await this.load();
  }

  // Index in the volume of the plane's voxel (u, w) (axial: x, y; coronal: x, z; sagittal: y, z).
  index(u, w) {
    const [nx, ny] = this.viewer.dims;
    if (this.view === "axial") return this.at * nx * ny + w * nx + u;
    return this.view === "coronal" ? w * nx * ny + this.at * nx + u : w * nx * ny + u * nx + this.at;
  }

  get width() { return this.viewer.dims[this.view === "sagittal" ? 1 : 0]; }

  get height() { return this.viewer.dims[this.view === "axial" ? 1 : 2]; }

  cut(volume) {
    const w = this.width, hgt = this.height;
    const out = new volume.constructor(w * hgt);
    for (let b = 0; b < hgt; b++) for (let u = 0; u < w; u++) out[b * w + u] = volume[this.index(u, b)];
    return out;
  }

  // The plane's place: its NIfTI dimensions and origin (mm).
  get geometry() {
    const [nx, ny, nz] = this.viewer.dims;
    const [sx, sy, sz] = this.viewer.spacing;
    if (this.view === "axial") return [[nx, ny, 1], [0, 0, this.at * sz]];
    return this.view === "coronal" ? [[nx, 1, nz], [0, this.at * sy, 0]] : [[1, ny, nz], [this.at * sx, 0, 0]];
  }

  get sliceType() { return { axial: SLICE_TYPE.AXIAL, coronal: SLICE_TYPE.CORONAL, sagittal: SLICE_TYPE.SAGITTAL }[this.view]; }

  async load() {
    const v = this.viewer;
    const back = v.nv.volumes[0];
    const [dims, origin] = this.geometry;
    const img = this.cut(back.img);
    const nii = niftiFromArray(img, dims, v.spacing, ...niftiTypeOf(img), { origin, window: [back.cal_min, back.cal_max] });
    this.nv.volumes = [];
    await this.nv.loadFromArrayBuffer(nii, "plane.nii");
    if (this.blend) {
      const series = this.cut(this.blend.img);
      await this.nv.loadFromArrayBuffer(niftiFromArray(series, dims, v.spacing, ...niftiTypeOf(series), { origin, window: this.blend.range }), "series.nii");
      this.nv.volumes[1].colormap = "warm";
      this.nv.volumes[1].opacity = this.blend.opacity;
      this.nv.updateGLVolume();
    }
    this.nv.setSliceType(this.sliceType);
    this.nv.createEmptyDrawing();
    if (v.cmap) { this.nv.setDrawColormap(v.cmap); this.nv.setDrawOpacity(0.6); }
    this.pullDrawing();
    this.nv.onDrawingChanged = () => this.pushDrawing();
    this.arm();
    performance.mark("aimd:plane");
  }

  // The pen of the main viewer (tool, label, on or off).
  arm() {
    if (!this.nv?.drawBitmap) return;
    const main = this.viewer.nv;
    this.nv.setDrawingEnabled(Boolean(main.opts.drawingEnabled));
    this.nv.setPenValue(main.opts.penValue, main.opts.isFilledPen);
    this.nv.opts.penSize = main.opts.penSize;
  }

  window(lo, hi) {
    const vol = this.nv?.volumes[0];
    if (!this.shown || !vol) return;
    vol.cal_min = lo;
    vol.cal_max = hi;
    this.nv.updateGLVolume();
  }

  setOpacity(opacity) {
    if (this.blend) this.blend.opacity = opacity;
    if (this.shown && this.nv.volumes[1]) this.nv.setOpacity(1, opacity);
  }

  // The volume's drawing on the plane → the plane's bitmap (after undo, redo, loads).
  pullDrawing() {
    if (!this.shown || !this.nv.drawBitmap) return;
    this.nv.drawBitmap.set(this.cut(this.viewer.nv.drawBitmap));
    this.nv.refreshDrawing(true);
  }

  // A stroke on the plane → the volume's drawing, one undo step there, and the autosave of that plane.
  pushDrawing() {
    const v = this.viewer;
    const bm = v.nv.drawBitmap;
    const w = this.width, hgt = this.height;
    let lo = [Infinity, Infinity], hi = [-1, -1];
    for (let b = 0; b < hgt; b++) for (let u = 0; u < w; u++) {
      const i = this.index(u, b), value = this.nv.drawBitmap[b * w + u];
      if (bm[i] !== value) {
        bm[i] = value;
        lo = [Math.min(lo[0], u), Math.min(lo[1], b)];
        hi = [Math.max(hi[0], u), Math.max(hi[1], b)];
      }
    }
    if (hi[0] < 0) return;
    const place = ([u, b]) => ({ axial: [u, b, this.at], coronal: [u, this.at, b], sagittal: [this.at, u, b] }[this.view]);
    v.touch(place(lo));
    v.touch(place(hi));
    v.nv.drawAddUndoBitmap();
    v.redoStack = [];
    this.onChange("draw");
  }

  // Page position of API voxel [x, y, z] on the plane shown.
  screenAt(xyz) {
    const [x, y, z] = this.viewer.apiVoxel(xyz);
    const vox = { axial: [x, y, 0], coronal: [x, 0, z], sagittal: [0, y, z] }[this.view];
    const hit = this.nv.frac2canvasPosWithTile(this.nv.vox2frac(vox), this.sliceType);
    if (!hit?.pos) return null;
    const r = this.canvas.getBoundingClientRect();
    const dpr = this.nv.uiData.dpr || 1;
    return [r.left + hit.pos[0] / dpr, r.top + hit.pos[1] / dpr];
  }
}
