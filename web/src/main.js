// Router: #/login, #/tasks, #/admin, #/task/<id> (annotate / rework / arbitrate), #/review/<id>.
import { session, post } from "./api.js";
import { h } from "./dom.js";
import { getLang, setLang, t } from "./i18n.js";
import { loginScreen } from "./screens/login.js";
import { taskList } from "./screens/tasks.js";
import { adminScreen } from "./screens/admin.js";
import { workspace } from "./screens/workspace.js";
import { reviewScreen } from "./screens/review.js";

let cleanup = null;

function nav() {
  const user = session.user;
  const links = [];
  if (user) {
    links.push(h("a", { href: "#/tasks" }, t("tasks")));
    if (["admin", "qc", "reviewer"].includes(user.role)) links.push(h("a", { href: "#/admin" }, t("admin")));
  }
  document.getElementById("nav").replaceChildren(...links);
  document.getElementById("who").replaceChildren(user ? h("span", {}, `${user.username} (${user.role}) `,
    h("button", { id: "logout", type: "button", onclick: logout }, t("logout"))) : "");
  document.getElementById("lang").textContent = getLang() === "zh" ? "EN" : "中文";
}

async function logout() {
  try { await post("/auth/logout"); } catch { /* the session may have ended already */ }
  session.clear();
  location.hash = "#/login";
}

async function route() {
  if (cleanup) { await cleanup(); cleanup = null; }
  nav();
  const [, page, id] = (location.hash || "#/tasks").split("/");
  if (!session.token && page !== "login") { location.hash = "#/login"; return; }
  if (page === "login") cleanup = await loginScreen();
  else if (page === "admin") cleanup = await adminScreen();
  else if (page === "task") cleanup = await workspace(Number(id));
  else if (page === "review") cleanup = await reviewScreen(Number(id));
  else cleanup = await taskList();
}

document.getElementById("lang").addEventListener("click", () => { setLang(getLang() === "zh" ? "en" : "zh"); route(); });
window.addEventListener("hashchange", route);
setLang(getLang());
route();
