"""The report renders in a real browser: every figure loads and the console stays clean."""

from __future__ import annotations

import os
import shutil

import pytest

from probe.report.build import build_report
from tests.report import fixtures as fx

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _require_browser():
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
    except ImportError:
        sync_playwright = None
    if CHROMIUM is None or sync_playwright is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide Debian's chromium and the playwright package (see .ci/run)")
        pytest.skip("needs /usr/bin/chromium and playwright")


@pytest.mark.browser
def test_report_renders_in_headless_chromium(tmp_path):
    _require_browser()
    from playwright.sync_api import sync_playwright

    report = build_report([fx.full_run(tmp_path / "run")], tmp_path / "report.html")
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(report.as_uri())
        page.wait_for_load_state("load")
        images = page.eval_on_selector_all("img", "els => els.map(e => [e.complete, e.naturalWidth, e.alt])")
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
        headings = page.eval_on_selector_all("h2", "els => els.map(e => e.textContent)")
        browser.close()
    assert len(images) >= 5
    broken = [alt for complete, width, alt in images if not complete or width == 0]
    assert not broken, f"figures that failed to load: {broken}"
    assert not errors, f"console errors: {errors}"
    assert shot.stat().st_size > 20_000
    assert "Does packing preserve information?" in headings
