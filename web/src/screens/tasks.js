import { get } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";

const STATUS_DONE = new Set(["submitted", "done", "accepted", "closed"]);

export async function taskList() {
  const tasks = await get("/tasks");
  const byProject = {};
  for (const task of tasks) (byProject[task.project] ||= []).push(task);
  const cards = Object.entries(byProject).map(([pid, list]) => {
    const done = list.filter((x) => STATUS_DONE.has(x.status)).length;
    const pct = Math.round((100 * done) / list.length);
    return h("div", { class: "card" },
      h("h3", {}, `${t("project")} ${pid} `, h("span", { class: "bar", title: `${pct}%` }, h("i", { style: { width: `${pct}%` } })), ` ${done}/${list.length}`),
      h("table", { class: "tasks" }, h("tr", {}, h("th", {}, "#"), h("th", {}, t("kind")), h("th", {}, t("case")), h("th", {}, t("status")), h("th", {}, "")),
        list.map((x) => h("tr", { dataset: { task: x.id } }, h("td", {}, x.id), h("td", {}, x.kind), h("td", {}, x.case),
          h("td", { class: "status" }, x.status),
          h("td", {}, x.status === "open" ? h("a", { href: ["review", "qc_sample", "arbitrate"].includes(x.kind) ? `#/review/${x.id}` : `#/task/${x.id}`, class: "open-task" }, t("open")) : "")))));
  });
  mount(h("div", { id: "task-list" }, h("h2", {}, t("tasks")), cards.length ? cards : h("p", {}, t("noTasks"))));
}
