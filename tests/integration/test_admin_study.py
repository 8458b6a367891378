"""The admin screen's DICOM study import in Debian's Chromium against `aimd platform serve`: a zip of a
de-identified two-series study is uploaded, the screen lists the series found with their slice counts,
the chosen primary and the registration's status, Mattes MI and coverage, as the server stored them; the
upload shows its progress, then the queued import's state until it is done; a broken upload shows the
server's refusal at once, and an import that fails shows its refusal naming the file (001 §6.4.1, §10.1.1)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from workspace_support import CHROMIUM, chromium, login, serve_platform, shot

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from study_support import deidentified_study, zip_folder

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is absent (apt-get install chromium)"),
]


def test_admin_imports_a_study_and_sees_its_series_and_registration(tmp_path: Path) -> None:
    study = deidentified_study(tmp_path / "study")
    archive = tmp_path / "study.zip"
    archive.write_bytes(zip_folder(study, only=("t1", "coarse")))
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    (tmp_path / "notes.zip").write_bytes(zip_folder(study, only=("t1",), extra={"t1/notes.txt": b"to do"}))
    with serve_platform(tmp_path / "srv", {"admin": "admin"}) as served, chromium() as ctx:
        page = ctx.new_page()
        login(page, served, "admin")
        page.goto(f"{served.url}/#/admin")
        page.fill("#new-name", "brain")
        page.fill("#new-labels", "1=LUNG")
        page.fill("#new-readers", "1")
        page.fill("#new-max-mi", "-0.2")
        page.click("#do-create")
        page.wait_for_selector(".card.project .max-mi")
        card = page.locator(".card.project").first
        project = int(card.get_attribute("data-project"))
        assert "MI ≤ -0.2" in card.locator(".max-mi").inner_text()
        card.locator(".study-key").fill("mr-study-1")
        card.locator(".study-zip").set_input_files(str(tmp_path / "broken.zip"))
        card.locator(".do-study").click()
        page.wait_for_function("document.querySelector('#admin-error').textContent.length > 0")
        assert "not a zip" in page.inner_text("#admin-error")  # refused at once, before any import is queued
        card.locator(".study-zip").set_input_files(str(tmp_path / "notes.zip"))
        card.locator(".do-study").click()
        page.wait_for_selector(".study-progress")  # the upload's progress, then the queued import's state
        page.wait_for_function("document.querySelector('#admin-error').textContent.length > 0", timeout=120_000)
        failed = page.inner_text("#admin-error")  # the failed import's refusal, naming the file and the fix
        assert "not a DICOM" in failed and "t1/notes.txt" in failed and "remove it" in failed, failed
        card.locator(".study-zip").set_input_files(str(archive))
        card.locator(".do-study").click()
        page.wait_for_selector(".study-progress")
        shot(page, "admin-study-importing")
        page.wait_for_selector(".study-table", timeout=120_000)
        card = page.locator(f".card.project[data-project='{project}']")
        rows = card.locator("tr.study-series")
        assert rows.count() == 2 and page.inner_text("#admin-error") == ""
        primary = card.locator("tr.study-series[data-role=primary]")
        registered = card.locator("tr.study-series[data-role=registered]")
        assert primary.locator(".slices").inner_text() == "20" == registered.locator(".slices").inner_text()
        assert "rigid_mattes_mi · ok" in registered.locator(".reg").inner_text()
        shown_mi = float(registered.locator(".mi").inner_text())
        coverage = int(registered.locator(".coverage").inner_text().split()[0])
        shot(page, "admin-study-import")
        token = page.evaluate("sessionStorage.getItem('aimd.token')")
        stored = _stored_series(served, token, project)
        assert stored["case_key"] == "mr-study-1" and primary.get_attribute("data-uid") == stored["primary"]
        reg = stored["registration"]
        assert registered.get_attribute("data-uid") == stored["series_key"]
        assert shown_mi == pytest.approx(reg["mattes_mi"], abs=1e-3) and coverage == round(100 * reg["overlap"])
        assert reg["max_mi"] == -0.2  # the limit set on the screen reached the registration
        imports = served.api("admin").get(f"/api/v1/projects/{project}/imports").json()
        assert [i["status"] for i in imports] == ["done", "failed"] and imports[0]["case_key"] == "mr-study-1"
        assert imports[0]["result"]["primary"] == stored["primary"]


def _stored_series(served: Any, token: str, project: int) -> dict[str, Any]:
    """What the server stored (read from its database, not from the page)."""
    import sqlalchemy as sa

    from aimd.platform import Platform
    from aimd.platform.models import Case, CaseSeries

    platform = Platform.open(served.data)
    try:
        with platform.sessions() as db:
            case = db.scalar(sa.select(Case).where(Case.project_id == project))
            row = db.scalar(sa.select(CaseSeries).where(CaseSeries.case_id == case.id))
            return {
                "case_key": case.case_key,
                "primary": case.image["dicom"]["series_uid"],
                "series_key": row.series_key,
                "registration": row.registration,
            }
    finally:
        platform.close()
