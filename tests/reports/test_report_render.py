"""Run and comparison reports rendered from synthetic folders (no sampling)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
from conftest import render_run_dir as render_run

from nadfit.datasets.errors import UserError
from nadfit.fitting.comparison.pipeline import render_comparison_folder as render_comparison
from nadfit.reports.render import COMPARISON_SECTIONS, RUN_SECTIONS


def _sections(html: str) -> list[str]:
    return re.findall(r'<section id="([^"]+)">\s*<h[12]>', html)


def test_run_report_structure(rendered_run):
    html = rendered_run.read_text()
    assert _sections(html) == list(RUN_SECTIONS)
    assert "<script" not in html.lower()
    assert "Content-Security-Policy" in html and "script-src 'none'" in html
    assert "prefers-color-scheme: dark" in html
    assert "could not be drawn" not in html
    assert html.count('<img src="data:image/png;base64,') >= 9
    # self-contained: nothing is loaded from the network (evidence notes may quote URLs as text)
    assert not re.search(r'(src|srcset|data|poster)\s*=\s*"https?:|url\(\s*["\']?https?:|@import', html, re.I)
    assert rendered_run.stat().st_size < 5_000_000
    # the banner names what passed (the synthetic run passes every sampler check)
    head = html[: html.index('<section id="diagnostics">')]
    assert "banner bad" not in head and "All convergence gates passed" not in html
    assert "Passed: R-hat, bulk ESS, divergent transitions, rank-ECDF uniformity, E-BFMI" in head
    assert "rank-ECDF p" in html and "simultaneous 99 % envelope" in html
    # interval convention, BFMI, contraction, psense, provenance decisions, gaps
    assert "89 % equal-tailed" in html
    assert "E-BFMI per chain" in html
    assert "Contraction = 1 − posterior variance / prior variance" in html
    assert "arviz_stats.psense" in html
    for decision in ("likelihood", "design", "redundant"):
        assert f"<strong>{decision}</strong>" in html
    assert "Recorded gaps" in html and "H1" in html
    assert "Huang 2022 serum +11.3 %" not in html  # overlay labels live in the figure, not the text
    assert "Huang 2022" in html and "matrix differs" in html


def test_failed_gates_banner(synth_failed_run, tmp_path):
    html = render_run(synth_failed_run, tmp_path / "r.html", figures=False).read_text()
    head = html[: html.index('<section id="diagnostics">')]
    assert 'class="banner bad"' in head and "CONVERGENCE GATES FAILED" in head


def test_evidence_change_warning(synth_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(synth_run, run)
    s = json.loads((run / "summary.json").read_text())
    s["evidence_fingerprint"] = "0" * 64
    (run / "summary.json").write_text(json.dumps(s))
    html = render_run(run, figures=False).read_text()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("nadfit: warning: the evidence changed since this fit")
    assert 'class="banner warn"' in html and "the evidence changed since this fit" in html


def test_metadata_is_escaped(synth_run, tmp_path, monkeypatch):
    from nadfit import datasets

    evil = "<script>alert(1)</script>"
    real_ev, real_st = datasets.load_evidence, datasets.load_studies

    def load_evidence(*a, **k):
        df = real_ev(*a, **k)
        df["note"] = evil
        df["locator"] = evil
        df.loc[df.index[0], "source_url"] = "javascript:alert(1)"
        return df

    def load_studies(*a, **k):
        st = real_st(*a, **k)
        return {sid: m.model_copy(update={"citation": evil + m.citation}) for sid, m in st.items()}

    monkeypatch.setattr(datasets, "load_evidence", load_evidence)
    monkeypatch.setattr(datasets, "load_studies", load_studies)
    html = render_run(synth_run, tmp_path / "evil.html", figures=False).read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html


def test_run_errors(tmp_path, synth_run):
    with pytest.raises(UserError, match="does not exist"):
        render_run(tmp_path / "missing")
    inc = tmp_path / "inc"
    shutil.copytree(synth_run, inc)
    (inc / "COMPLETE").unlink()
    with pytest.raises(UserError, match="incomplete"):
        render_run(inc)
    with pytest.raises(UserError, match=r"\.html"):
        render_run(synth_run, tmp_path / "report.pdf")


def test_cli_report(synth_run, tmp_path, capsys, monkeypatch):
    import nadfit.reports.render as rr
    from nadfit.fitting.cli import main

    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("nadfit: error:")
    calls = []
    monkeypatch.setattr(rr, "render_run", lambda run, out=None, psense=None: calls.append((run.dir, out)) or
                        rr._write(out, "<html></html>"))
    out = tmp_path / "cli.html"
    assert main(["report", str(synth_run), "--out", str(out)]) == 0
    assert out.exists() and calls == [(synth_run, out)]


def test_comparison_report(rendered_comparison):
    html = rendered_comparison.read_text()
    assert _sections(html) == list(COMPARISON_SECTIONS)
    assert "<script" not in html.lower()
    assert "not computed" not in html
    assert "Verdict:" in html and "failed_gates" in html
    # ELPD, Pareto k, LOO-PIT, weights, by study, both marginal-likelihood estimators, observation grid, phi,
    # calibration
    assert html.count('<img src="data:image/png;base64,') == 9
    assert "Which studies decide?" in html and "leave-one-study-out" in html
    assert "unreliable: refit needed" in html and "eps 0.2" in html
    assert rendered_comparison.stat().st_size < 5_000_000


def test_comparison_minimal_says_not_computed(synth_run, tmp_path):
    from conftest import make_comparison

    folder = make_comparison(tmp_path / "cmp", {"via-nr": synth_run}, full=False)
    html = render_comparison(folder).read_text()
    for what in ("Secondary units", "Observation-settings grid", "Bayes factors", "Sensitivity analysis",
                 "Route share (phi)", "Calibration (confusion matrix)",
                 "LOO-PIT (no numeric rows with replicated values in comparison.json)"):
        assert f"{what}: not computed." in html
    assert _sections(html) == list(COMPARISON_SECTIONS)


def test_comparison_errors(tmp_path, synth_comparison, capsys):
    from nadfit.fitting.cli import main

    bad = tmp_path / "bad"
    shutil.copytree(synth_comparison, bad)
    (bad / "comparison.json").write_text(json.dumps({"schema": "nadfit.comparison/0"}))
    with pytest.raises(UserError, match="incompatible"):
        render_comparison(bad)
    assert main(["report-compare", str(bad)]) == 2
    assert "incompatible" in capsys.readouterr().err


def test_value_rows_show_their_own_unit_and_the_coverage_line(rendered_run):
    """A time-to-plateau row is replicated in weeks (not '%'), and the coverage line counts it."""
    import re

    html = rendered_run.read_text()
    m = re.search(r"<td class=\"mono\">EV098</td>.*?</tr>", html, re.S)
    assert m, "EV098 row missing"
    assert " week</td>" in m.group(0) and " %</td>" not in m.group(0)
    cov = re.search(r"Posterior predictive coverage:</strong> the 89 % interval holds the reported value for "
                    r"(\d+) of (\d+) quantitative human rows", html)
    assert cov and int(cov.group(2)) >= 3 and int(cov.group(1)) <= int(cov.group(2))


def test_predictive_coverage_counts_human_and_other_rows():
    from nadfit.reports.render import predictive_coverage

    rows = [{"kind": "value", "inside": True, "observable": "human_log_fold", "evidence_id": "A"},
            {"kind": "value", "inside": False, "observable": "human_t90", "evidence_id": "B"},
            {"kind": "value", "inside": False, "observable": "aged", "evidence_id": "C"},
            {"kind": "finding", "p": 0.2, "observable": "aged", "evidence_id": "D"}]
    c = predictive_coverage(rows)
    assert (c["human"], c["human_inside"], c["human_outside"]) == (2, 1, ["B"])
    assert (c["other"], c["other_inside"], c["other_outside"]) == (1, 0, ["C"])


def test_comparison_shows_the_human_only_section_with_refit_status(rendered_comparison):
    import re

    html = rendered_comparison.read_text()
    sec = re.search(r'<section id="human-only">.*?</section>', html, re.S)
    assert sec, "human-only section missing"
    text = sec.group(0)
    assert "refit on human evidence (mixed)" in text
    assert "accepted_failed_gates" in text  # a refit that failed its gates says so
    assert "unreliable" in text  # the hypothesis whose reweighting has k > 0.7 shows no numbers


def test_comparison_shows_which_trials_could_tell_the_hypotheses_apart(rendered_comparison, synth_comparison):
    import json
    import re

    html = rendered_comparison.read_text()
    sec = re.search(r'<section id="trial-designs">.*?</section>', html, re.S)
    assert sec, "trial-designs section missing"
    text = sec.group(0)
    comp = json.loads((synth_comparison / "comparison.json").read_text())
    for d in comp["designs"]["designs"]:
        assert d["title"] in text
        for a in d["arms"]:
            assert a["label"] in text
        for blk in d["by_arm_size"]:
            assert f"{blk['arm_size']} per arm" in text
            for p in blk["pairs"]:
                assert f"{p['hypotheses'][0]} vs {p['hypotheses'][1]} <strong>{p['verdict']}</strong>" in text
    assert "(control)" in text
    assert "CD73" in text  # the evidence blood NAD+ cannot give is listed


def test_a_run_of_an_earlier_model_version_is_refused_in_one_line(tmp_path):
    """A posterior without a parameter of the current model (here the species offsets) is refused
    with one line naming what is missing, not a KeyError deep in the comparison."""
    import xarray as xr
    from conftest import make_run

    from nadfit.datasets.errors import UserError
    from nadfit.fitting.inference.runs import load_run

    run = make_run(tmp_path / "old")
    path = run / "posterior.nc"
    dt = xr.open_datatree(path, engine="h5netcdf").load()
    post = dt["posterior"].to_dataset().drop_vars(["z_core_rodent", "z_core_cell"])
    dt["posterior"] = xr.DataTree(post)
    path.unlink()
    dt.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(UserError, match="earlier model version .*z_core_rodent"):
        load_run(run).model()
