// .npy reading/writing (the API's mask and image format) and a NIfTI-1 wrapper for NiiVue.
const DTYPES = {
  "|u1": [Uint8Array, 2, 8], "|i1": [Int8Array, 256, 8], "<i2": [Int16Array, 4, 16], "<u2": [Uint16Array, 512, 16],
  "<i4": [Int32Array, 8, 32], "<u4": [Uint32Array, 768, 32], "<f4": [Float32Array, 16, 32], "<f8": [Float64Array, 64, 64],
};

// NIfTI datatype code and bits per voxel of a typed array.
export function niftiTypeOf(data) {
  const spec = Object.values(DTYPES).find(([C]) => data instanceof C);
  if (!spec) throw new Error(`no NIfTI type for ${data.constructor.name}`);
  return [spec[1], spec[2]];
}

export function parseNpy(buf) {
  const u8 = new Uint8Array(buf);
  if (u8[0] !== 0x93 || String.fromCharCode(...u8.slice(1, 6)) !== "NUMPY") throw new Error("not a .npy file");
  const major = u8[6];
  const hlen = major === 1 ? u8[8] | (u8[9] << 8) : new DataView(buf).getUint32(8, true);
  const off = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(u8.slice(off, off + hlen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1].replace("<u1", "|u1").replace("<i1", "|i1").replace("|b1", "|u1");
  if (/'fortran_order':\s*True/.test(header)) throw new Error("Fortran-ordered .npy is not supported");
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  const spec = DTYPES[descr];
  if (!spec) throw new Error(`unsupported dtype ${descr}`);
  const start = off + hlen;
  const n = (buf.byteLength - start) / spec[0].BYTES_PER_ELEMENT;
  // a view on the downloaded bytes when aligned (numpy pads headers to 64 bytes), no copy of 100 MB
  const data = start % spec[0].BYTES_PER_ELEMENT === 0 && Number.isInteger(n) ? new spec[0](buf, start, n) : new spec[0](buf.slice(start));
  return { shape, descr, data, niftiType: spec[1], bitpix: spec[2] };
}

// .npy of uint8 or uint16 `data` (label values above 255 need uint16).
export function writeNpy(data, shape) {
  const descr = data instanceof Uint16Array ? "<u2" : "|u1";
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(", ")}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += " ".repeat(pad % 64) + "\n";
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 78, 85, 77, 80, 89, 1, 0, header.length & 255, header.length >> 8]);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

// Display flips: the API's arrays are (z, y, x) with LPS directions; NiiVue shows RAS. For a
// diagonal direction the flips below put the image in RAS voxel order, and the same flips (their own
// inverse) map the drawing back to the API's voxel order, so a mask round-trips voxel for voxel.
export function flipsFor(direction) {
  const d = direction || [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
  return [d[0][0] > 0, d[1][1] > 0, d[2][2] < 0];
}

// `out`: where to write (a new array by default; a view into a NIfTI buffer saves one copy).
export function flip(data, [nx, ny, nz], [fx, fy, fz], out = null) {
  if (!fx && !fy && !fz) { if (out) out.set(data); return out ?? data; }
  out ??= new data.constructor(data.length);
  const plane = nx * ny;
  for (let z = 0; z < nz; z++) {
    const zs = fz ? nz - 1 - z : z;
    for (let y = 0; y < ny; y++) {
      const ys = fy ? ny - 1 - y : y;
      const src = data.subarray(zs * plane + ys * nx, zs * plane + ys * nx + nx);
      const dst = out.subarray(z * plane + y * nx, z * plane + y * nx + nx);
      dst.set(src);
      if (fx) dst.reverse();
    }
  }
  return out;
}

// NIfTI-1 of `data` (API order, flipped into display order on the way: one copy); `origin` is the
// position (mm) of its first voxel (a single slice or plane sits at its place in the volume); `window` [min, max] becomes
// cal_min/cal_max, which NiiVue takes instead of estimating a display range from a histogram.
export function niftiFromArray(data, [nx, ny, nz], [sx, sy, sz], niftiType, bitpix, { flips = [false, false, false], origin = [0, 0, 0], window = null } = {}) {
  const buf = new ArrayBuffer(352 + data.byteLength);
  const v = new DataView(buf);
  v.setInt32(0, 348, true);
  [3, nx, ny, nz, 1, 1, 1, 1].forEach((d, i) => v.setInt16(40 + 2 * i, d, true));
  v.setInt16(70, niftiType, true);
  v.setInt16(72, bitpix, true);
  [1, sx, sy, sz, 1, 1, 1, 1].forEach((p, i) => v.setFloat32(76 + 4 * i, p, true));
  v.setFloat32(108, 352, true);
  v.setFloat32(112, 1, true);
  if (window) { v.setFloat32(124, window[1], true); v.setFloat32(128, window[0], true); }
  v.setUint8(123, 2);
  v.setInt16(254, 1, true);
  [[sx, 0, 0, origin[0]], [0, sy, 0, origin[1]], [0, 0, sz, origin[2]]].forEach((row, r) => row.forEach((c, i) => v.setFloat32(280 + 16 * r + 4 * i, c, true)));
  new Uint8Array(buf, 344, 4).set([110, 43, 49, 0]);
  flip(data, [nx, ny, nz], flips, new data.constructor(buf, 352, data.length));
  return buf;
}
