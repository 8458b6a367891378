// Review / arbitration / QC sampling: readers side by side or overlaid, per-label Dice and HD95,
// level-1 QC findings, accept / reject with a written reason; the arbiter picks the final mask.
import { call, get } from "../api.js";
import { h, mount, toast } from "../dom.js";
import { t } from "../i18n.js";
import { parseNpy, writeNpy } from "../npy.js";
import { Viewer } from "../viewer.js";

const fmt = (v) => (v === null || v === undefined ? "—" : typeof v === "number" ? v.toFixed(3) : String(v));

export async function reviewScreen(taskId) {
  const task = await get(`/tasks/${taskId}`);
  const project = await get(`/projects/${task.project}`);
  const subs = (await get(`/cases/${task.case}/submissions`)).filter((s) => s.current);
  const image = await call("GET", `/tasks/${taskId}/image`, { raw: true }).then((r) => r.arrayBuffer());
  const masks = await Promise.all(subs.map((s) => call("GET", `/submissions/${s.id}/mask`, { raw: true }).then((r) => r.arrayBuffer())));
  const diff = subs.length >= 2 ? await get(`/diff?a=${subs[0].id}&b=${subs[1].id}`) : null;
  const err = h("div", { class: "error", id: "review-error" });
  const pair = h("div", { class: "pair", id: "pair" });
  const viewers = [];
  const reason = h("textarea", { id: "reason", rows: 3, cols: 50, placeholder: t("reason") });
  const decided = h("div", { id: "decided" });

  async function decide(outcome) {
    err.textContent = "";
    if (outcome === "reject" && !reason.value.trim()) { err.textContent = t("reasonNeeded"); return; }
    const path = task.kind === "qc_sample" ? "qc-decision" : "review";
    try {
      const out = await call("POST", `/tasks/${taskId}/${path}`, { json: { outcome, reason: reason.value } });
      decided.replaceChildren(h("div", { class: "ok card" }, `${outcome} ✓ ${JSON.stringify(out)}`));
    } catch (ex) { err.textContent = ex.message; }
  }

  async function useMask(i) {
    err.textContent = "";
    try {
      const current = await call("GET", `/tasks/${taskId}`, { raw: true });
      const arr = parseNpy(masks[i]);
      await call("PUT", `/tasks/${taskId}/draft`, { body: writeNpy(arr.data instanceof Uint16Array ? arr.data : Uint8Array.from(arr.data), arr.shape),
        headers: { "If-Match": current.headers.get("ETag"), "Content-Type": "application/octet-stream" } });
      toast(`${t("reader")} ${subs[i].reader} → draft`);
      location.hash = `#/task/${taskId}`;
    } catch (ex) { err.textContent = ex.message; }
  }

  async function show(mode) {
    for (const v of viewers) v.nv.gl?.getExtension("WEBGL_lose_context")?.loseContext();
    viewers.length = 0;
    const canvases = mode === "overlay" ? [h("canvas", { class: "review-gl" })] : subs.map(() => h("canvas", { class: "review-gl" }));
    pair.style.gridTemplateColumns = mode === "overlay" ? "1fr" : "1fr 1fr";
    pair.replaceChildren(...canvases.map((c, i) => h("div", { class: "viewer" }, c,
      mode === "overlay" ? null : h("div", { style: { position: "absolute", top: "2px", left: "4px", color: "#fff" } }, `${t("reader")} ${subs[i].reader} · ${subs[i].annotator}`))));
    for (const [i, c] of canvases.entries()) {
      const v = new Viewer(c);
      await v.open(image, task.image);
      if (mode === "overlay") {
        const a = parseNpy(masks[0]).data;
        const b = parseNpy(masks[1] || masks[0]).data;
        const both = new Uint8Array(a.length);
        for (let k = 0; k < a.length; k++) both[k] = (a[k] ? 1 : 0) + (b[k] ? 2 : 0);
        v.setLabels([{ value: 1, code: "A" }, { value: 2, code: "B" }, { value: 3, code: "A∩B" }]);
        v.setMask(both);
      } else {
        v.setLabels(project.labels);
        v.loadMask(masks[i]);
      }
      v.window(40, 400);
      viewers.push(v);
    }
  }

  const perLabel = diff ? diff.per_label || diff.labels || [] : [];
  const rows = Array.isArray(perLabel) ? perLabel : Object.entries(perLabel).map(([k, v]) => ({ label: k, ...v }));
  mount(h("div", { id: "review", dataset: { task: taskId } },
    h("h2", {}, `${task.kind === "arbitrate" ? t("arbitrate") : t("review")} · ${t("case")} ${task.case_key}`), err,
    h("div", { class: "tools" }, h("button", { id: "mode-side", onclick: () => show("side") }, t("sideBySide")),
      subs.length >= 2 ? h("button", { id: "mode-overlay", onclick: () => show("overlay") }, t("overlay")) : null),
    pair,
    h("div", { class: "card" }, h("h3", {}, `${t("dice")} / ${t("hd95")}`),
      diff ? h("table", { id: "agreement" }, h("tr", {}, h("th", {}, t("labels")), h("th", {}, t("dice")), h("th", {}, t("hd95"))),
        rows.map((r) => h("tr", {}, h("td", {}, r.label_code ?? r.label), h("td", { class: "dice" }, fmt(r.dice)), h("td", {}, fmt(r.hd95_mm ?? r.hd95)))))
        : h("p", {}, "one reader: agreement not evaluated")),
    h("div", { class: "card" }, h("h3", {}, t("qc")), subs.map((s, i) => h("div", { class: "qc-sub" },
      h("strong", {}, `${t("reader")} ${s.reader} (${s.annotator})`), " ",
      (s.qc?.findings || []).length ? s.qc.findings.map((f) => h("div", { class: `finding ${f.severity}` }, `${f.code}: ${f.message}`)) : h("span", { class: "ok" }, t("noFindings")),
      ` · ${(s.qc?.marks?.objects || []).length} ${t("objects")}, ${(s.qc?.marks?.spans || []).length} ${t("spans")}`,
      task.kind === "arbitrate" ? h("button", { class: "use-mask", onclick: () => useMask(i) }, t("useMask")) : null))),
    task.kind === "arbitrate" ? null : h("div", { class: "card" }, reason, h("div", { class: "tools" },
      h("button", { id: "accept", class: "primary", onclick: () => decide("accept") }, t("accept")),
      h("button", { id: "reject", onclick: () => decide("reject") }, t("reject"))), decided)));
  await show("side");
  window.aimdReview = { viewers, diff };
  return () => { for (const v of viewers) v.nv.gl?.getExtension("WEBGL_lose_context")?.loseContext(); delete window.aimdReview; };
}
