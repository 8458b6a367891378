// Delta saves: the box of voxels that changed since the last saved version, in the API's (z, y, x)
// order, gzip-compressed for PATCH /tasks/{id}/draft?z=&y=&x= (the server applies it to that version).
import { flip } from "./npy.js";

// Bounding box [x0, y0, z0, x1, y1, z1] (inclusive, display order) of voxels where a and b differ, or null.
// `within`: a box known to hold every change (where the pen went), scanned alone; otherwise the whole
// volume is compared four voxels at a time (a 512×512×200 drawing is 52 M voxels; differing words are rare).
export function changedBox(a, b, [nx, ny, nz], within = null) {
  let x0 = nx, y0 = ny, z0 = nz, x1 = -1, y1 = -1, z1 = -1;
  const plane = nx * ny;
  const hit = (i) => {
    const z = Math.floor(i / plane), y = Math.floor((i % plane) / nx), x = i % nx;
    if (x < x0) x0 = x; if (x > x1) x1 = x;
    if (y < y0) y0 = y; if (y > y1) y1 = y;
    if (z < z0) z0 = z; if (z > z1) z1 = z;
  };
  if (within) {
    const [wx0, wy0, wz0, wx1, wy1, wz1] = within;
    for (let z = wz0; z <= wz1; z++) for (let y = wy0; y <= wy1; y++) {
      const row = z * plane + y * nx;
      for (let i = row + wx0; i <= row + wx1; i++) if (a[i] !== b[i]) hit(i);
    }
    return z1 < 0 ? null : [x0, y0, z0, x1, y1, z1];
  }
  const n = a.length, words = n >> 2;
  const aligned = a.byteOffset % 4 === 0 && b.byteOffset % 4 === 0;
  if (aligned) {
    const a32 = new Uint32Array(a.buffer, a.byteOffset, words), b32 = new Uint32Array(b.buffer, b.byteOffset, words);
    for (let w = 0; w < words; w++) {
      if (a32[w] !== b32[w]) for (let i = 4 * w; i < 4 * w + 4; i++) if (a[i] !== b[i]) hit(i);
    }
  }
  for (let i = aligned ? words * 4 : 0; i < n; i++) if (a[i] !== b[i]) hit(i);
  return z1 < 0 ? null : [x0, y0, z0, x1, y1, z1];
}

// The box's voxels of `data` (display order, x fastest) as a new array.
export function readBox(data, [nx, ny], [x0, y0, z0, x1, y1, z1]) {
  const dx = x1 - x0 + 1, dy = y1 - y0 + 1, dz = z1 - z0 + 1;
  const out = new data.constructor(dx * dy * dz);
  for (let z = 0; z < dz; z++) for (let y = 0; y < dy; y++) {
    const src = (z0 + z) * nx * ny + (y0 + y) * nx + x0;
    out.set(data.subarray(src, src + dx), (z * dy + y) * dx);
  }
  return out;
}

export function writeBox(data, [nx, ny], [x0, y0, z0, x1, y1, z1], box) {
  const dx = x1 - x0 + 1, dy = y1 - y0 + 1, dz = z1 - z0 + 1;
  for (let z = 0; z < dz; z++) for (let y = 0; y < dy; y++) {
    const at = (z * dy + y) * dx;
    data.set(box.subarray(at, at + dx), (z0 + z) * nx * ny + (y0 + y) * nx + x0);
  }
}

// The patch to send: the box in API order ({ z, y, x } offset, [dz, dy, dx] shape, data) and the
// display-order copy to write into the saved bitmap once the server has it.
export function patchOf(saved, current, dims, flips, within = null) {
  const box = changedBox(saved, current, dims, within);
  if (!box) return null;
  const [nx, ny, nz] = dims;
  const [x0, y0, z0, x1, y1, z1] = box;
  const shown = readBox(current, dims, box);
  const size = [x1 - x0 + 1, y1 - y0 + 1, z1 - z0 + 1];
  const [fx, fy, fz] = flips;
  return {
    box, shown, shape: [size[2], size[1], size[0]], data: flip(shown, size, flips),
    at: { x: fx ? nx - 1 - x1 : x0, y: fy ? ny - 1 - y1 : y0, z: fz ? nz - 1 - z1 : z0 },
  };
}

export async function gzip(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
