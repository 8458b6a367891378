"""The annotation platform's screens used in a real browser (002 §4.3.1 a: menus and navigation shown and
working): a probe account signs in through the login screen with password and TOTP, opens every menu
entry the protocol lists for its role, switches the interface language there and back, and logs out —
after which its session token must be refused by the API. Headless Chromium driven by Playwright; each
step is timed and screenshotted, and a script error in the page fails the step it happened in.

Example
-------
>>> from aimd.iq.specs import default_platform_spec
>>> spec = default_platform_spec()
>>> spec.ui_role, spec.ui_screens
('qc', {'#/tasks': 'task-list', '#/admin': 'admin'})
>>> leaked_placeholders("Projects null K=2 · NaN %")
['NaN', 'null']
>>> leaked_placeholders("No projects visible to you · nullable field")
[]
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

from aimd.iq.checks.base import CheckResult, IQContext
from aimd.iq.checks.platform import PlatformCheck, PlatformSession, _totp
from aimd.iq.checks.service import ink_fraction
from aimd.iq.checks.target import auth_headers

# headless WebGL2 on a machine without a GPU (SwiftShader); --no-sandbox: the IQ may run as root
CHROMIUM_ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
STEP_TIMEOUT_MS = 20_000
# what a screen shows when its script wrote a missing value as text
_PLACEHOLDER = re.compile(r"(?<![\w.])(null|undefined|NaN|\[object Object\])(?![\w.])")


def leaked_placeholders(text: str) -> list[str]:
    """The missing-value words (``null``, ``undefined``, ``NaN``, ``[object Object]``) standing alone in
    ``text``, sorted: a screen that shows one has written an absent value instead of leaving it out."""
    return sorted(set(_PLACEHOLDER.findall(text)))


def _browser() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@contextlib.contextmanager
def _page(executable: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1200, "height": 800}, ignore_https_errors=True)
            page = context.new_page()
            page.set_default_timeout(STEP_TIMEOUT_MS)
            yield page
        finally:
            browser.close()


class UiNavigationCheck(PlatformCheck):
    key = "function.ui_navigation"
    area = "function"
    clause = "002 §4.3.1 a"
    title = (
        "the platform's menus and navigation work in a browser: sign-in with TOTP, each menu screen, language, log-out"
    )
    impact = "users cannot sign in or reach their screens after installation"
    fix = "check the installed static assets, the platform's logs and the page's errors named in the evidence"

    min_ink = 0.005  # as function.ui_render: an error line or an empty page draws less

    def run(self, ctx: IQContext) -> CheckResult:
        if ctx.platform is not None and ctx.protocol.platform is not None and not ctx.protocol.platform.ui_screens:
            return self.not_evaluated("the protocol's platform section lists no menu screens (ui_screens)")
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            return self.not_evaluated("Playwright is not installed (pip install 'aimd[iq]')")
        if _browser() is None:
            return self.not_evaluated("Chromium is not installed")
        return super().run(ctx)

    def check(self, ctx: IQContext, session: PlatformSession) -> CheckResult:
        spec = session.spec
        account = session.account(spec.ui_role)
        base = str(ctx.platform).rstrip("/")
        rows: list[dict[str, Any]] = []
        with _page(str(_browser())) as page:
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            walk = _Walk(ctx, page, rows, errors, self.min_ink)
            walk.step("login screen", lambda: page.goto(f"{base}/#/login"), "#username", "#password", "#totp")
            if walk.ok:
                walk.step("sign in", lambda: _sign_in(page, account), "#who", next(iter(spec.ui_screens.values())))
                shown = (page.text_content("#who") or "").strip() if walk.ok else ""
                if walk.ok and account["username"] not in shown:
                    walk.fail_last(f"the bar shows {shown!r}, not the account {account['username']}")
            token = page.evaluate("sessionStorage.getItem('aimd.token')") if walk.ok else None
            for link, element in spec.ui_screens.items() if walk.ok else ():
                walk.step(f"menu {link}", lambda link=link: _open_menu(page, link), f"#{element}")
            if walk.ok:
                walk.language()
            if walk.ok:
                walk.step("log out", lambda: page.click("#logout"), "#username")
        session.state["tokens"].pop(spec.ui_role, None)  # the browser's login ended the probe's API session
        if token and rows[-1]["passed"]:
            refused = session.http.get(spec.session_probe_path, headers=auth_headers(token))
            rows[-1]["token_after_logout"] = refused.status_code
            if refused.status_code != 401:
                rows[-1].update(passed=False, problem=f"the session token still answers {refused.status_code}")
        bad = [f"{r['step']}: {r['problem']}" for r in rows if not r["passed"]]
        return self.tally(
            ctx,
            rows,
            bad,
            expected=(
                f"as {spec.ui_role}: sign-in with TOTP, menus {', '.join(spec.ui_screens)} open their screens, "
                "the language switches, log-out ends the session; no script error, no blank screen"
            ),
            counted="steps worked",
            found=("broken", "every step worked"),
            evidence="ui_navigation",
            data_key="steps",
            sep="; ",
            extra_evidence=[r["screenshot"] for r in rows if "screenshot" in r],
        )


class _StepError(Exception):
    """A step's own finding (not a browser error)."""


def _open_menu(page: Any, link: str) -> None:
    entry = page.query_selector(f'#nav a[href="{link}"]')
    if entry is None:
        shown = [a.get_attribute("href") for a in page.query_selector_all("#nav a")]
        raise _StepError(f"the menu has no entry {link} (it shows {', '.join(map(str, shown)) or 'none'})")
    entry.click()


def _sign_in(page: Any, account: dict[str, Any]) -> None:
    page.fill("#username", account["username"])
    page.fill("#password", account["password"])
    page.fill("#totp", _totp(account.get("totp_secret")) or "")
    page.click("#login")


class _Walk:
    """Runs the steps in one page; a step passes when its elements show, it draws content and the page
    raised no script error meanwhile."""

    def __init__(self, ctx: IQContext, page: Any, rows: list[dict[str, Any]], errors: list[str], ink: float) -> None:
        self.ctx, self.page, self.rows, self.errors, self.min_ink = ctx, page, rows, errors, ink

    @property
    def ok(self) -> bool:
        return not self.rows or bool(self.rows[-1]["passed"])

    def fail_last(self, problem: str) -> None:
        self.rows[-1].update(passed=False, problem=problem)

    def step(self, name: str, action: Callable[[], object], *selectors: str) -> None:
        from playwright.sync_api import Error as PlaywrightError

        seen = len(self.errors)
        row: dict[str, Any] = {"step": name, "expects": [s for s in selectors if s]}
        start = time.perf_counter()
        problem = ""
        sel = ""
        try:
            action()
            for sel in row["expects"]:
                self.page.wait_for_selector(sel if sel.startswith("#") else f"#{sel}", state="visible")
        except _StepError as err:
            problem = str(err)
        except PlaywrightError as err:
            first = str(err).splitlines()[0]
            problem = f"{sel} not shown ({first})" if "wait_for_selector" in first else first
        row["seconds"] = round(time.perf_counter() - start, 3)
        self._shoot(row, name)
        if not problem and row["ink_fraction"] < self.min_ink:
            problem = f"blank screen (ink {row['ink_fraction']:.2%})"
        if len(self.errors) > seen:
            problem = "; ".join(filter(None, [problem, f"script error: {self.errors[seen]}"]))
        leaked = leaked_placeholders(self.page.inner_text("#app")) if self.page.query_selector("#app") else []
        if leaked:
            problem = "; ".join(filter(None, [problem, f"the screen shows {', '.join(map(repr, leaked))}"]))
        error_box = self._shown_error()
        if error_box:
            problem = "; ".join(filter(None, [problem, f"the screen shows the error {error_box!r}"]))
        row.update(passed=not problem, problem=problem)
        self.rows.append(row)

    def language(self) -> None:
        """Switch the language and back: the document's lang and the menu's text change, then return."""
        page = self.page
        before = (page.evaluate("document.documentElement.lang"), page.text_content("#nav") or "")
        self.step("language", lambda: page.click("#lang"), "#nav")
        after = (page.evaluate("document.documentElement.lang"), page.text_content("#nav") or "")
        self.rows[-1]["language"] = {"before": before, "after": after}
        if self.ok and (after[0] == before[0] or after[1] == before[1]):
            self.fail_last(f"the switch left the language {after[0]!r} and the menu {after[1]!r} as they were")
        page.click("#lang")
        back = (page.evaluate("document.documentElement.lang"), page.text_content("#nav") or "")
        if self.ok and back != before:
            self.fail_last(f"switching back gave {back}, not {before}")

    def _shown_error(self) -> str:
        for box in self.page.query_selector_all(".error"):
            text = (box.text_content() or "").strip()
            if text and box.is_visible():
                return text[:200]
        return ""

    def _shoot(self, row: dict[str, Any], name: str) -> None:
        png = self.ctx.evidence_dir / f"ui-nav-{len(self.rows) + 1:02d}-{name.replace(' ', '-').replace('/', '')}.png"
        png = png.with_name(png.name.replace("#", ""))
        png.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            self.page.screenshot(path=str(png))
        if png.is_file():
            row["screenshot"] = png.relative_to(self.ctx.out).as_posix()
            row["ink_fraction"] = round(ink_fraction(png), 5)
        else:
            row["ink_fraction"] = 0.0


PLATFORM_UI_CHECKS = [UiNavigationCheck]

__all__ = ["PLATFORM_UI_CHECKS", "UiNavigationCheck"]
