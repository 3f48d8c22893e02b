"""Render the reports in headless Chromium (DevTools over a pipe): no console errors, every
section visible, every figure loaded, the first row of every table visible (nothing drawn over
it), nothing wider than its card. Screenshots go to tests/artifacts/ (gitignored)."""

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
    info = inspect_page(path, screenshot=shot, width=1280, height=4000, layout=True)
    assert info["errors"] == [], info["errors"]
    assert info["tables"], "no tables found"
    hidden = [t for t in info["tables"] if not t["visible"]]
    assert hidden == [], hidden
    assert info["overflow"] == [], info["overflow"]
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


@pytest.mark.parametrize("which", ["rendered_run", "rendered_comparison"])
def test_layout_holds_on_a_narrow_window(which, request):
    """800 px wide (a laptop's half screen): still no hidden first row, nothing wider than its card."""
    info = inspect_page(request.getfixturevalue(which), width=800, height=1200, layout=True)
    assert [t for t in info["tables"] if not t["visible"]] == []
    assert info["overflow"] == [], info["overflow"]


def test_harness_catches_errors(tmp_path):
    """Negative control: a blocked network fetch and a script are reported as errors."""
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
                    "content=\"default-src 'none'; img-src data:\"></head><body>"
                    '<img src="http://127.0.0.1:9/x.png"><script>console.error("boom")</script></body></html>')
    info = inspect_page(page)
    assert info["errors"], "the harness missed a CSP violation"


#: the report CSS before issue 18: a sticky header offset by 2rem inside a scroll box, a wide
#: table in a scroll box, a cut-off numeric header
OLD_CSS_PAGE = """<!DOCTYPE html><html><head><style>
body { font: 14px/1.45 sans-serif; }
section { width: 600px; border: 1px solid #ccc; padding: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 12.5px; }
th, td { padding: .25rem .45rem; }
th { position: sticky; top: 2rem; background: #eee; }
.scroll { max-height: 200px; overflow: auto; }
table.fixed { table-layout: fixed; } td.num, th.num { white-space: nowrap; }
</style></head><body>
<section id="a"><div class="scroll"><table><tr><th>parameter</th><th>R-hat</th></tr>
<tr><td>beta</td><td>1.0</td></tr><tr><td>kappa</td><td>1.0</td></tr><tr><td>ell</td><td>1.0</td></tr>
<tr><td>gamma</td><td>1.0</td></tr><tr><td>r_kd</td><td>1.0</td></tr><tr><td>r_ko</td><td>1.0</td></tr>
<tr><td>q_nrk</td><td>1.0</td></tr><tr><td>h_age</td><td>1.0</td></tr><tr><td>c_age</td><td>1.0</td></tr>
</table></div></section>
<section id="b"><div class="scroll"><table style="width: 900px"><tr><th>id</th><th>note</th></tr>
<tr><td>EV1</td><td>a provenance row</td></tr></table></div></section>
<section id="c"><table class="fixed"><colgroup><col style="width:90%"><col style="width:10%"></colgroup>
<tr><th>label</th><th class="num">replicated median</th></tr><tr><td>x</td><td class="num">1.0</td></tr></table></section>
</body></html>"""


def test_layout_checks_catch_the_old_defects(tmp_path):
    """Negative control: the layout checks flag a header over the first row, a table wider than
    its card and a cut-off header cell."""
    page = tmp_path / "old.html"
    page.write_text(OLD_CSS_PAGE)
    info = inspect_page(page, layout=True)
    hidden = [t["where"] for t in info["tables"] if not t["visible"]]
    assert any(w.startswith("#a ") for w in hidden), info["tables"]
    assert any(o.startswith("#b ") and "sideways" in o for o in info["overflow"]), info["overflow"]
    assert any(o.startswith("#c ") and "replicated median" in o for o in info["overflow"]), info["overflow"]


def test_make_screenshots_reads_the_rendered_pages(rendered_run, rendered_comparison, tmp_path, capsys):
    """The README screenshot tool screenshots report.html / comparison.html as written (it used
    to call the renderers with folder paths, which they no longer take)."""
    from nadfit.reports.make_screenshots import main

    run_dir, cmp_dir = tmp_path / "run", tmp_path / "cmp"
    run_dir.mkdir()
    cmp_dir.mkdir()
    (run_dir / "report.html").write_bytes(rendered_run.read_bytes())
    (cmp_dir / "comparison.html").write_bytes(rendered_comparison.read_bytes())
    assert main([str(run_dir), str(cmp_dir), "--out-dir", str(tmp_path / "shots")]) == 0
    assert (tmp_path / "shots" / "report.png").stat().st_size > 10_000
    assert (tmp_path / "shots" / "comparison.png").stat().st_size > 10_000
    assert main([str(tmp_path / "missing"), "--out-dir", str(tmp_path / "shots")]) == 2
    assert "render it first" in capsys.readouterr().err
