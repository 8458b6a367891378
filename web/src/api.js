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

// A form upload with progress (fetch reports none): onProgress(sent, total) as the body leaves.
export function upload(path, form, { headers = {}, onProgress } = {}) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open("POST", `/api/v1${path}`);
    if (session.token) x.setRequestHeader("Authorization", `Bearer ${session.token}`);
    for (const [k, v] of Object.entries(headers)) x.setRequestHeader(k, v);
    x.upload.onprogress = (e) => { if (onProgress && e.lengthComputable) onProgress(e.loaded, e.total); };
    x.onerror = () => reject(new ApiError(0, { message: "the upload was interrupted", hint: "check the connection and send it again" }));
    x.onload = () => {
      let b = null;
      try { b = JSON.parse(x.responseText); } catch { /* not JSON */ }
      if (x.status >= 200 && x.status < 300) resolve(b);
      else {
        if (Array.isArray(b?.detail)) b = { message: b.detail.map((d) => `${d.loc?.join(".")}: ${d.msg}`).join("; ") };
        reject(new ApiError(x.status, b));
      }
    };
    x.send(form);
  });
}

export const get = (p) => call("GET", p);
export const post = (p, json) => call("POST", p, { json: json ?? {} });
