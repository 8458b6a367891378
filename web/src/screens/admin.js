// Project admin: create, import, distribute, progress, freeze, export (buttons follow the role).
import { ApiError, call, get, post, session, upload } from "../api.js";
import { h, mount, toast } from "../dom.js";
import { getLang, t } from "../i18n.js";

const L = (zh, en) => (getLang() === "zh" ? zh : en);

const CAN = {
  admin: ["create", "import", "distribute", "freeze", "export"],
  qc: ["export"],
  reviewer: [],
};

function b64(file) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result).split(",", 2)[1]);
    r.onerror = () => reject(r.error);
    r.readAsDataURL(file);
  });
}

export async function adminScreen() {
  const can = new Set(CAN[session.user.role] || []);
  const root = h("div", { id: "admin" });
  const exported = h("div", { id: "exported" }); // outside the re-drawn part
  const err = h("div", { class: "error", id: "admin-error" });
  const guard = (fn) => async (...a) => { err.textContent = ""; try { await fn(...a); } catch (ex) { err.textContent = ex.message; } };

  async function render() {
    const projects = await get("/projects");
    const cards = [];
    for (const p of projects) {
      const prog = await get(`/projects/${p.id}/progress`);
      const total = Object.values(prog.tasks).reduce((a, b) => a + b, 0);
      const pct = prog.cases ? Math.round((100 * prog.accepted) / prog.cases) : 0;
      const file = h("input", { type: "file", class: "nifti", accept: ".nii,.nii.gz" });
      const key = h("input", { class: "case-key", placeholder: t("casekey") });
      const report = h("textarea", { class: "report-in", rows: 2, placeholder: t("report") });
      const fields = h("textarea", { class: "fields-in", rows: 2, placeholder: '{"age": 60}' });
      const frame = h("input", { class: "for-uid", placeholder: "FrameOfReferenceUID", size: 28 });
      cards.push(h("div", { class: "card project", dataset: { project: p.id } },
        h("h3", {}, `${p.name} · v${p.version} ${p.frozen ? `· ${t("frozen")}` : ""}`),
        h("p", {}, `${t("labels")}: `, p.labels.map((l) => `${l.value}=${l.code}`).join(", "), ` · K=${p.readers}`,
          h("span", { class: "max-mi" }, ` · ${L("配准", "registration")} MI ≤ ${p.registration_max_mi}`)),
        h("p", {}, `${t("progress")}: `, h("span", { class: "bar" }, h("i", { style: { width: `${pct}%` } })),
          ` ${prog.accepted}/${prog.cases} · ${t("tasks")} ${total}`),
        h("table", {}, h("tr", {}, h("th", {}, t("user")), h("th", {}, t("tasks"))),
          Object.entries(prog.per_person).map(([u, c]) => h("tr", {}, h("td", {}, u), h("td", {}, Object.entries(c).map(([k, v]) => `${k}: ${v}`).join(", "))))),
        can.has("import") && !p.frozen ? h("div", { class: "import" }, h("strong", {}, t("import")), " ", key, file, report, fields, frame,
          h("button", { class: "do-import", onclick: guard(async () => {
            const body = { case_key: key.value, image_nifti_b64: await b64(file.files[0]), report_text: report.value,
              fields: fields.value ? JSON.parse(fields.value) : {}, frame_of_reference_uid: frame.value || null };
            await call("POST", `/projects/${p.id}/cases`, { json: body });
            toast(`${t("import")}: ${key.value}`);
            await render();
          }) }, t("import"))) : null,
        can.has("import") && !p.frozen && prog.cases ? await seriesForm(p) : null,
        can.has("import") && !p.frozen ? studyForm(p) : null,
        h("div", { class: "tools" },
          can.has("distribute") ? h("button", { class: "do-distribute", onclick: guard(async () => {
            const out = await post(`/projects/${p.id}/distribute`, {});
            toast(`${t("tasks")}: ${out.created.length}`);
            await render();
          }) }, t("distribute")) : null,
          can.has("freeze") && !p.frozen ? h("button", { class: "do-freeze", onclick: guard(async () => { await post(`/projects/${p.id}/freeze`); await render(); }) }, t("freeze")) : null,
          can.has("export") ? h("button", { class: "do-export", onclick: guard(async () => {
            const out = await post(`/projects/${p.id}/export`);
            exported.replaceChildren(h("pre", { class: "card export-out" }, JSON.stringify(out, null, 2)));
          }) }, t("export")) : null)));
    }
    const name = h("input", { id: "new-name", placeholder: t("name") });
    const labels = h("input", { id: "new-labels", value: "1=LUNG_NODULE" });
    const readers = h("input", { id: "new-readers", type: "number", min: 1, max: 10, value: 2 });
    const goal = h("input", { id: "new-goal", placeholder: t("goal"), size: 50 });
    const maxMi = h("input", { id: "new-max-mi", type: "number", step: 0.05, max: 0, value: -0.1, title: L("配准的 Mattes MI 上限（更高则配准失败）", "Worst Mattes MI a series registration may reach (higher fails)") });
    const create = can.has("create") ? h("div", { class: "card" }, h("h3", {}, t("create")), name, " ", labels, " ", readers, " ", goal, " ", "MI ≤ ", maxMi, " ",
      h("button", { id: "do-create", class: "primary", onclick: guard(async () => {
        const label_map = Object.fromEntries(labels.value.split(",").map((s) => s.trim().split("=")));
        const g = goal.value || name.value;
        await post("/projects", { name: name.value, label_map, readers: Number(readers.value), registration_max_mi: Number(maxMi.value), task_definition: {
          goal: g, modalities: ["CT", "report text", "clinical fields"], objects_and_outputs: "label mask, boxes and report links per reader",
          alignment_rules: "image, report and fields of one examination stay together", qc_and_traceability: "level-1 QC, K readers, review, audit" } });
        await render();
      }) }, t("create"))) : null;
    // replaceChildren writes a null as the text "null": absent parts are left out
    const body = cards.length ? cards : [h("p", { id: "no-projects" }, t("noProjects"))];
    root.replaceChildren(...[h("h2", {}, t("admin")), err, create, ...body].filter(Boolean));
  }
  // A further series of an imported case: registered onto the case's image by the server at import.
  async function seriesForm(p) {
    const cases = await get(`/projects/${p.id}/cases`);
    const pick = h("select", { class: "series-case" }, cases.map((c) => h("option", { value: c.id }, c.case_key)));
    const key = h("input", { class: "series-key", placeholder: t("seriesKey") });
    const file = h("input", { type: "file", class: "series-nifti", accept: ".nii,.nii.gz" });
    const frame = h("input", { class: "series-for-uid", placeholder: "FrameOfReferenceUID", size: 28 });
    const out = h("span", { class: "series-out" });
    return h("div", { class: "import" }, h("strong", {}, t("addSeries")), " ", pick, key, file, frame,
      h("button", { class: "do-series", onclick: guard(async () => {
        const body = { series_key: key.value, image_nifti_b64: await b64(file.files[0]), frame_of_reference_uid: frame.value || null };
        const s = await call("POST", `/projects/${p.id}/cases/${pick.value}/series`, { json: body });
        const r = s.registration;
        out.className = `series-out ${r.status === "ok" ? "ok" : "error"}`;
        out.textContent = ` ${s.series_key}: ${r.method} · ${r.status} · ${t("overlap")} ${Math.round(100 * r.overlap)} %${r.message ? ` · ${r.message}` : ""}`;
      }) }, t("addSeries")), out);
  }

  // A DICOM study (zip): the server splits its series, picks the primary and registers the others.
  function studyForm(p) {
    const file = h("input", { type: "file", class: "study-zip", accept: ".zip,application/zip" });
    const key = h("input", { class: "study-key", placeholder: t("casekey") });
    const primary = h("input", { class: "study-primary", placeholder: L("主序列 UID（可选）", "Primary SeriesInstanceUID (optional)"), size: 32 });
    const out = h("div", { class: "study-out" }, studies.has(p.id) ? studyTable(studies.get(p.id)) : null);
    return h("div", { class: "import study" }, h("strong", {}, L("导入 DICOM 检查 (zip)", "Import DICOM study (zip)")), " ", key, file, primary,
      h("button", { class: "do-study", onclick: guard(async () => {
        const f = file.files[0];
        if (!f) throw new Error(L("请选择 zip 文件", "Choose a zip file"));
        const form = new FormData();
        form.append("case_key", key.value); // before the file: the server refuses a duplicate before the upload
        if (primary.value) form.append("primary_series_uid", primary.value);
        form.append("file", f);
        const bar = h("progress", { class: "study-progress", max: 100, value: 0 });
        const state = h("span", { class: "study-state" }, L("上传中…", "uploading…"));
        out.replaceChildren(bar, " ", state);
        try {
          // the body leaves with progress; the server answers 202 with the queued import, then imports it
          let job = await upload(`/projects/${p.id}/studies`, form, {
            // the same file for the same case sent again (a second click) replays the first import
            headers: { "Idempotency-Key": `${p.id}:${f.size}:${f.lastModified}:${key.value}:${f.name}`.slice(0, 200) },
            onProgress: (sent, total) => {
              bar.value = Math.round((100 * sent) / total);
              state.textContent = `${L("上传中", "uploading")} ${Math.round(sent / 1048576)}/${Math.round(total / 1048576)} MB`;
            },
          });
          bar.value = 100;
          out.dataset.importId = job.id;
          while (job.status === "queued" || job.status === "running") {
            state.textContent = job.status === "queued" ? L("排队等待导入…", "queued for import…") : L("导入中（拆分序列、检查、配准）…", "importing (series, checks, registration)…");
            await new Promise((r) => setTimeout(r, 1000));
            job = await get(`/imports/${job.id}`);
          }
          if (job.status === "failed") throw new ApiError(job.error.status, job.error);
          studies.set(p.id, job.result);
        } catch (ex) { out.replaceChildren(); throw ex; }
        toast(`${t("import")}: ${key.value}`);
        await render();
      }) }, L("导入检查", "Import study")), out);
  }
  function studyTable(res) {
    const pct = (x) => (x === null || x === undefined ? "–" : `${Math.round(100 * x)} %`);
    const rows = res.series.map((s) => {
      const r = s.registration;
      const state = s.role === "primary" ? "ok" : r.status === "ok" ? "ok" : "error";
      return h("tr", { class: `study-series ${state}`, dataset: { uid: s.series_uid, role: s.role } },
        h("td", { title: s.series_uid }, `…${s.series_uid.slice(-12)}`), h("td", {}, s.modality || ""), h("td", {}, s.description || ""),
        h("td", { class: "slices" }, String(s.slices)),
        h("td", { class: "role" }, s.role === "primary" ? L("主序列", "primary") : L("已配准", "registered")),
        h("td", { class: "reg" }, r ? `${r.method} · ${r.status}` : "–"),
        h("td", { class: "mi" }, r && r.mattes_mi !== null ? r.mattes_mi.toFixed(3) : "–"),
        h("td", { class: "coverage" }, r ? pct(r.overlap) : "–"),
        h("td", {}, [r?.message, ...(s.warnings || [])].filter(Boolean).join("; ")));
    });
    return h("div", {},
      h("p", { class: "study-primary-out" }, `${t("case")} ${res.case.case_key} · ${L("主序列", "primary")}: …${res.primary.slice(-12)} (${res.primary_rule})`),
      h("table", { class: "study-table" },
        h("tr", {}, ["SeriesInstanceUID", L("模态", "Modality"), L("描述", "Description"), L("层数", "Slices"), L("角色", "Role"),
          L("配准", "Registration"), "Mattes MI", L("覆盖", "Coverage"), L("说明", "Notes")].map((x) => h("th", {}, x))),
        rows));
  }

  const studies = new Map();
  mount(h("div", {}, root, exported));
  await guard(render)();
}
