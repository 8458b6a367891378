// Full-resolution coronal and sagittal planes of a large volume (shown one axial slice at a time): the plane
// through the crosshair is cut from the volume in the page and shown by a NiiVue of its own, over the main
// canvas, as a one-plane volume at its place in the image, with the plane of the drawing. A stroke there is
// written back into the volume's drawing and autosaved like an axial one (the delta box is that plane).
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
    this.onChange = () => {};
  }

  get shown() { return this.view !== null; }

  // Show the coronal ("coronal") or sagittal ("sagittal") plane through the crosshair.
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
    this.at = view === "coronal" ? vox[1] : vox[0];
    await this.load();
  }

  hide() {
    if (!this.shown) return;
    this.view = null;
    this.canvas.style.display = "none";
    this.viewer.nv.refreshDrawing(true);
  }

  // Move the plane by `delta` voxels along its normal.
  async slice(delta) {
    const n = this.viewer.dims[this.view === "coronal" ? 1 : 0];
    const at = Math.min(Math.max(this.at + delta, 0), n - 1);
    if (at === this.at) return;
    this.at = at;
    await this.load();
  }

  // Index of display voxel (x, z) of the plane (coronal: x along x; sagittal: y along x) in the volume.
  index(u, z) {
    const [nx, ny] = this.viewer.dims;
    return this.view === "coronal" ? z * nx * ny + this.at * nx + u : z * nx * ny + u * nx + this.at;
  }

  get width() { return this.viewer.dims[this.view === "coronal" ? 0 : 1]; }

  async load() {
    const v = this.viewer;
    const back = v.nv.volumes[0];
    const [nx, ny, nz] = v.dims;
    const w = this.width;
    const img = new back.img.constructor(w * nz);
    for (let z = 0; z < nz; z++) for (let u = 0; u < w; u++) img[z * w + u] = back.img[this.index(u, z)];
    const coronal = this.view === "coronal";
    const dims = coronal ? [nx, 1, nz] : [1, ny, nz];
    const [sx, sy] = v.spacing;
    const nii = niftiFromArray(img, dims, v.spacing, ...niftiTypeOf(img), { origin: coronal ? [0, this.at * sy, 0] : [this.at * sx, 0, 0],
      window: [back.cal_min, back.cal_max] });
    this.nv.volumes = [];
    await this.nv.loadFromArrayBuffer(nii, "plane.nii");
    this.nv.setSliceType(coronal ? SLICE_TYPE.CORONAL : SLICE_TYPE.SAGITTAL);
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

  // The volume's drawing on the plane → the plane's bitmap (after undo, redo, loads).
  pullDrawing() {
    if (!this.shown || !this.nv.drawBitmap) return;
    const bm = this.viewer.nv.drawBitmap;
    const w = this.width, nz = this.viewer.dims[2];
    for (let z = 0; z < nz; z++) for (let u = 0; u < w; u++) this.nv.drawBitmap[z * w + u] = bm[this.index(u, z)];
    this.nv.refreshDrawing(true);
  }

  // A stroke on the plane → the volume's drawing, one undo step there, and the autosave of that plane.
  pushDrawing() {
    const v = this.viewer;
    const bm = v.nv.drawBitmap;
    const w = this.width, nz = v.dims[2];
    let lo = [Infinity, Infinity], hi = [-1, -1];
    for (let z = 0; z < nz; z++) for (let u = 0; u < w; u++) {
      const i = this.index(u, z), value = this.nv.drawBitmap[z * w + u];
      if (bm[i] !== value) {
        bm[i] = value;
        lo = [Math.min(lo[0], u), Math.min(lo[1], z)];
        hi = [Math.max(hi[0], u), Math.max(hi[1], z)];
      }
    }
    if (hi[0] < 0) return;
    const coronal = this.view === "coronal";
    v.touch(coronal ? [lo[0], this.at, lo[1]] : [this.at, lo[0], lo[1]]);
    v.touch(coronal ? [hi[0], this.at, hi[1]] : [this.at, hi[0], hi[1]]);
    v.nv.drawAddUndoBitmap();
    v.redoStack = [];
    this.onChange("draw");
  }

  // Page position of API voxel [x, y, z] on the plane shown.
  screenAt(xyz) {
    const [x, y, z] = this.viewer.apiVoxel(xyz);
    const u = this.view === "coronal" ? x : y;
    const frac = this.nv.vox2frac(this.view === "coronal" ? [u, 0, z] : [0, u, z]);
    const hit = this.nv.frac2canvasPosWithTile(frac, this.view === "coronal" ? SLICE_TYPE.CORONAL : SLICE_TYPE.SAGITTAL);
    if (!hit?.pos) return null;
    const r = this.canvas.getBoundingClientRect();
    const dpr = this.nv.uiData.dpr || 1;
    return [r.left + hit.pos[0] / dpr, r.top + hit.pos[1] / dpr];
  }
}
