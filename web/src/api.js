// The platform API (/api/v1) — the workspace's only backend.
export class ApiError extends Error {
  constructor(status, body) {
    const b = body || {};
    super([b.message || b.detail || `HTTP ${status}`, b.where && `(${b.where})`, b.hint && `— ${b.hint}`]
      .filter(Boolean).join(" "));
    this.status = status;
    this.body = b;
  }
}

export const session = {
  get token() { return sessionStorage.getItem("aimd.token"); },
  get user() { return JSON.parse(sessionStorage.getItem("aimd.user") || "null"); },
  set(token, user) { sessionStorage.setItem("aimd.token", token); sessionStorage.setItem("aimd.user", JSON.stringify(user)); },
  clear() { sessionStorage.removeItem("aimd.token"); sessionStorage.removeItem("aimd.user"); },
};

export async function call(method, path, { json, body, headers = {}, raw = false } = {}) {
  const h = { ...headers };
  if (session.token) h.Authorization = `Bearer ${session.token}`;
  if (json !== undefined) { h["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  const r = await fetch(`/api/v1${path}`, { method, headers: h, body });
  if (!r.ok) {
    let b = null;
    try { b = await r.json(); } catch { /* not JSON */ }
    if (Array.isArray(b?.detail)) b = { message: b.detail.map((d) => `${d.loc?.join(".")}: ${d.msg}`).join("; ") };
    throw new ApiError(r.status, b);
  }
  if (raw) return r;
  return r.status === 204 ? null : r.json();
}

export const get = (p) => call("GET", p);
export const post = (p, json) => call("POST", p, { json: json ?? {} });
