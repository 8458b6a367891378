import { call, session } from "../api.js";
import { h, mount } from "../dom.js";
import { t } from "../i18n.js";

export async function loginScreen() {
  const user = h("input", { id: "username", autocomplete: "username", required: true });
  const pass = h("input", { id: "password", type: "password", autocomplete: "current-password", required: true });
  const totp = h("input", { id: "totp", inputmode: "numeric", autocomplete: "one-time-code", maxlength: 10 });
  const err = h("div", { class: "error", id: "login-error" });
  const form = h("form", { class: "card login", onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = "";
    try {
      const out = await call("POST", "/auth/login", { json: { username: user.value, password: pass.value, totp: totp.value || null } });
      session.set(out.token, out.user);
      location.hash = "#/tasks";
    } catch (ex) { err.textContent = ex.message; }
  } },
  h("h2", {}, t("login")), h("label", {}, t("username"), user), h("label", {}, t("password"), pass),
  h("label", {}, t("totp"), totp), h("button", { class: "primary", type: "submit", id: "login" }, t("login")), err);
  mount(form);
  user.focus();
}
