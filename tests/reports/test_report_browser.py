"""Render the reports in headless Chromium (DevTools over a pipe): no console errors, every
section visible, every figure loaded. Screenshots go to tests/artifacts/ (gitignored)."""

from __future__ import annotations

import pytest

from nadfit.reports.browser import find_chromium, inspect_page
from nadfit.reports.render import COMPARISON_SECTIONS, RUN_SECTIONS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(find_chromium() is None,
                       reason="chromium not installed (run .ci/setup or apt-get install chromium)"),
]


def _check(path, sections, shot):
    html = path.read_text()
    info = inspect_page(path, screenshot=shot, width=1280, height=4000)
    assert info["errors"] == [], info["errors"]
    assert info["n_script"] == 0
    assert list(info["sections"]) == list(sections)
    for sid, s in info["sections"].items():
        assert s["visible"] and s["heading_visible"] and s["heading"], sid
    n_fig = html.count("<img ") + html.count("<svg")
    assert n_fig > 0
    assert info["n_img"] + info["n_svg"] == n_fig
    assert info["n_img_loaded"] == info["n_img"]
    assert shot.exists() and shot.stat().st_size > 10_000
    return info


def test_run_report_in_browser(rendered_run):
    from conftest import ARTIFACTS

    _check(rendered_run, RUN_SECTIONS, ARTIFACTS / "report.png")


def test_comparison_report_in_browser(rendered_comparison):
    from conftest import ARTIFACTS

    info = _check(rendered_comparison, COMPARISON_SECTIONS, ARTIFACTS / "comparison.png")
    assert any("bad" in b["cls"] and b["visible"] for b in info["banners"])


def test_harness_catches_errors(tmp_path):
    """Negative control: a blocked network fetch and a script are reported as errors."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
                    "content=\"default-src 'none'; img-src data:\"></head><body>"
                    '<img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body></html>')
    info = inspect_page(page)
    assert info["errors"], "the harness missed a CSP violation"
