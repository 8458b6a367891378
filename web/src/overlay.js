// Vector objects (boxes, points, polygons) drawn over the viewer on a 2-D canvas of their own: NiiVue's
// drawing is a voxel bitmap, these are App. C coordinates in the API's voxel grid (x, y on slice z).
import { colour } from "./viewer.js";

export class VectorOverlay {
  constructor(viewer, host) {
    this.viewer = viewer;
    this.canvas = document.createElement("canvas");
    this.canvas.id = "vec";
    Object.assign(this.canvas.style, { position: "absolute", left: "0", top: "0", pointerEvents: "none" });
    host.append(this.canvas);
    this.objects = () => [];
    this.pending = () => [];
    this.valueOf = () => 1;
    this.last = "";
    this.stopped = false;
    const loop = () => { if (this.stopped) return; this.draw(); requestAnimationFrame(loop); };
    requestAnimationFrame(loop);
  }

  stop() { this.stopped = true; this.canvas.remove(); }

  // Only re-drawn when the slice, the view, the canvas size or the objects changed.
  draw() {
    const v = this.viewer;
    const gl = v.canvas;
    if (!v.dims) return;
    const nv = v.nv;
    const objs = this.objects();
    const pending = this.pending();
    const z = v.apiVoxel([0, 0, v.currentZ()])[2];
    const sig = JSON.stringify([z, gl.clientWidth, gl.clientHeight, nv.scene.pan2Dxyzmm, nv.opts.sliceType, objs, pending]);
    if (sig === this.last) return;
    this.last = sig;
    const c = this.canvas;
    c.width = gl.clientWidth; c.height = gl.clientHeight;
    c.style.width = `${gl.clientWidth}px`; c.style.height = `${gl.clientHeight}px`;
    const ctx = c.getContext("2d");
    ctx.clearRect(0, 0, c.width, c.height);
    const box = gl.getBoundingClientRect();
    const at = (x, y) => { const p = v.screenOf(x, y); return p && [p[0] - box.left, p[1] - box.top]; };
    ctx.lineWidth = 2;
    for (const o of objs) {
      const [r, g, b] = colour(this.valueOf(o.label_code));
      ctx.strokeStyle = ctx.fillStyle = `rgb(${r},${g},${b})`;
      if (o.type === "point") {
        if (o.point[2] !== z) continue;
        const p = at(o.point[0], o.point[1]);
        if (p) { ctx.beginPath(); ctx.arc(p[0], p[1], 5, 0, 2 * Math.PI); ctx.fill(); }
        continue;
      }
      if (o.slice_index !== z) continue;
      const corners = o.type === "bbox"
        ? [[o.bbox[0], o.bbox[1]], [o.bbox[2], o.bbox[1]], [o.bbox[2], o.bbox[3]], [o.bbox[0], o.bbox[3]]]
        : o.polygon;
      const pts = corners.map(([x, y]) => at(x, y));
      if (pts.some((p) => !p)) continue;
      ctx.beginPath();
      pts.forEach((p, i) => (i ? ctx.lineTo(p[0], p[1]) : ctx.moveTo(p[0], p[1])));
      ctx.closePath();
      ctx.stroke();
    }
    ctx.fillStyle = "#ffd866";
    for (const p of pending) {
      if (p[2] !== z) continue;
      const q = at(p[0], p[1]);
      if (q) ctx.fillRect(q[0] - 3, q[1] - 3, 6, 6);
    }
  }
}
