"""The run report's top banner reflects every diagnostic below it (issue 18): the rank-ECDF
uniformity test and its envelope, E-BFMI, the gates, the fit to the evidence."""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pytest
from conftest import render_run_dir as render_run

from nadfit.reports import figures
from nadfit.reports.diagnostics import RANK_ALPHA, rank_uniformity
from nadfit.reports.render import run_checks


def _ar1(rng, chains, draws, phi):
    x = np.zeros((chains, draws))
    e = rng.normal(size=(chains, draws))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + e[:, t]
    return x


def test_rank_uniformity_passes_mixed_chains_and_flags_a_shifted_one():
    rng = np.random.default_rng(0)
    ok = rank_uniformity(rng.normal(size=(4, 500)))
    assert ok["passed"] and ok["p"] > RANK_ALPHA and not ok["outside"]
    x = rng.normal(size=(4, 500))
    x[2] += 0.5
    bad = rank_uniformity(x)
    assert not bad["passed"] and bad["p"] <= RANK_ALPHA and bad["outside"]


def test_rank_uniformity_has_power_with_two_chains():
    """Two chains of 600 independent draws whose means differ by 0.3 SD: ArviZ's default
    multi-chain test gave p ≈ 1 here; this one must flag it."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 600))
    x[0] += 0.3
    assert not rank_uniformity(x)["passed"]


def test_envelope_and_p_value_agree():
    """A chain leaves the drawn envelope exactly when p <= alpha (figure and banner agree)."""
    rng = np.random.default_rng(2)
    for shift, chains in itertools.product((0.0, 0.1, 0.2, 0.3), (2, 3, 4)):
        x = rng.normal(size=(chains, 300))
        x[0] += shift
        r = rank_uniformity(x)
        d = r["ecdf_diff"]
        outside = bool(((d < r["lower"] - 1e-12) | (d > r["upper"] + 1e-12)).any())
        assert outside == r["outside"] == (r["p"] <= RANK_ALPHA) == (not r["passed"]), (shift, chains, r["p"])


def test_autocorrelated_but_mixing_chains_are_not_flagged():
    """Chains are thinned to about one draw per effective sample before the permutation test."""
    rng = np.random.default_rng(3)
    flagged = sum(not rank_uniformity(_ar1(rng, 4, 1000, 0.9))["passed"] for _ in range(30))
    assert flagged <= 2


def test_rank_uniformity_refuses_what_it_cannot_test():
    assert rank_uniformity(np.zeros((1, 100)))["passed"] is None
    assert rank_uniformity(np.ones((2, 100)))["passed"] is None


def _gate(name, passed):
    return {"name": name, "value": 1.0, "threshold": 1.0, "op": "≤", "passed": passed}


@pytest.mark.parametrize("gates_ok,rank_ok,bfmi_ok,fit_ok", list(itertools.product((True, False), repeat=4)))
def test_banner_says_what_passed_and_what_did_not(gates_ok, rank_ok, bfmi_ok, fit_ok):
    gates = [_gate("r_hat_max", gates_ok), _gate("ess_bulk_min", True), _gate("divergences", True)]
    rank = {"a": {"name": "a", "p": 0.5, "passed": True},
            "sigma_drift": {"name": "sigma_drift", "p": 0.5 if rank_ok else 0.0005, "passed": rank_ok}}
    bfmi = [0.8, 0.9 if bfmi_ok else 0.2]
    fit = [{"kind": "value", "evidence_id": "EV1", "inside": fit_ok}, {"kind": "finding", "evidence_id": "EV2", "p": 0.9}]
    c = run_checks(gates, rank, bfmi, fit, [{"name": "a", "diagnosis": "–"}], [], None)
    head = c["headline"]
    failed = {"R-hat": not gates_ok, "rank-ECDF uniformity": not rank_ok, "E-BFMI": not bfmi_ok}
    assert c["level"] == ("bad" if any(failed.values()) else "warn" if not fit_ok else "good")
    for name, bad in failed.items():
        assert (name in c["failed"]) == bad
        assert name in head  # every check is named, as passed or failed
    if any(failed.values()):
        assert "Every diagnostic" not in head and "No diagnostic failed" not in head
        assert "Passed:" in head
    if not rank_ok:
        assert "sigma_drift" in next(x["text"] for x in c["checks"] if x["name"] == "rank-ECDF uniformity")
    if not gates_ok:
        assert head.startswith("CONVERGENCE GATES FAILED: R-hat.")
    if not fit_ok:
        assert "fit to the evidence" in c["warned"] and "Read with care: fit to the evidence" in head


@pytest.fixture(scope="module")
def run_with_failing_rank_and_bfmi(synth_run, tmp_path_factory):
    """The synthetic run (every gate passed) with chain 0 of sigma_drift shifted and an energy
    trace that explores badly (E-BFMI < 0.3): today's "All convergence gates passed" case."""
    import xarray as xr

    out = tmp_path_factory.mktemp("badrank") / "via-nr"
    shutil.copytree(synth_run, out)
    dt = xr.open_datatree(synth_run / "posterior.nc").load()
    post = dt["posterior"].to_dataset()
    v = post["sigma_drift"].values.copy()
    v[0] += 3 * v.std()
    post["sigma_drift"] = (("chain", "draw"), v)
    ss = dt["sample_stats"].to_dataset()
    e = np.cumsum(np.random.default_rng(0).normal(size=ss["energy"].shape), axis=1) * 5
    ss["energy"] = (("chain", "draw"), e)
    dt["posterior"] = xr.DataTree(post)
    dt["sample_stats"] = xr.DataTree(ss)
    (out / "posterior.nc").unlink()
    dt.to_netcdf(out / "posterior.nc", engine="h5netcdf")
    return out


def test_banner_reflects_a_failing_rank_panel_under_passed_gates(run_with_failing_rank_and_bfmi, tmp_path):
    html = render_run(run_with_failing_rank_and_bfmi, tmp_path / "r.html", figures=False).read_text()
    head = html[: html.index('<section id="diagnostics">')]
    assert 'class="banner bad"' in head
    assert "All convergence gates passed" not in html and "Every diagnostic" not in head
    assert "Failed: rank-ECDF uniformity, E-BFMI." in head
    assert "Passed: R-hat, bulk ESS, divergent transitions" in head
    assert "chains disagree for sigma_drift" in head
    # the diagnostics table flags the parameter with its p-value
    diag = html[html.index('<section id="diagnostics">'): html.index('<section id="parameters">')]
    assert '<tr class="flag"><td>sigma_drift</td>' in diag


def test_rank_figure_draws_the_envelope_and_marks_the_failure():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 400))
    x[1] += 0.6
    tests = [{"name": "ok", **rank_uniformity(rng.normal(size=(2, 400)))}, {"name": "sigma_drift", **rank_uniformity(x)}]
    with figures.capture() as figs:
        uri = figures.rank_ecdf_plot(tests)
    assert uri.startswith("data:image/png")
    name, fig = figs[0]
    assert name == "rank_ecdf_plot"
    ax_ok, ax_bad = fig.axes[:2]
    from matplotlib.collections import PolyCollection

    assert any(isinstance(c, PolyCollection) for c in ax_ok.collections)  # the envelope
    assert ax_bad.title.get_color() == figures.OBS_COLOR and "p < 0.001" in ax_bad.title.get_text()
    assert ax_ok.title.get_color() == "black"


def _section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}">')
    end = html.find("<section id=", start + 10)
    return html[start: end if end > 0 else None]


def _text(fragment: str) -> str:
    import html as htmllib
    import re

    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


def test_fit_rows_name_arm_time_statistic_and_explain_model_quantities(rendered_run):
    import re

    fit = _section(rendered_run.read_text(), "fit")
    cells = re.findall(r'<td class="mono">(EV\d+)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td>', fit, re.S)
    rows = {e: _text(what) + " | " + _text(reported) for e, what, reported in cells}
    yi = [rows[e] for e in ("EV002", "EV003", "EV004", "EV005", "EV006", "EV007")]
    assert len(set(yi)) == 6
    assert yi[0] == "blood NAD concentration arm: NMN 300 mg/day · day 30 · blood unspecified | p ≤ 0.001 vs placebo; and own baseline"
    assert "arm: NMN 900 mg/day · day 60" in yi[5]
    text = _text(fit)
    assert "model quantity" in text and "log ratio of the arm's blood NAD+ to placebo's at that day" in text
    assert re.search(r"exp = ×\d\.\d\d vs placebo", text)


def test_units_column_and_dose_extrapolation(rendered_run):
    html = rendered_run.read_text()
    par = _section(html, "parameters")
    assert "<th>unit</th>" in par and "per g/day" in par and "dimensionless" in par
    dose = _text(_section(html, "dose-response"))
    assert "Doses with quantitative human evidence in this run" in dose and "250–1,000 mg/day" in dose
    assert "extrapolation (outside 250–1,000 mg/day)" in dose and "inside the studied range" in dose
