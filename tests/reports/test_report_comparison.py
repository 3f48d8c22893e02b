"""The comparison report never overstates (issue 18): the verdict as a headline and points, a
banner that reflects every diagnostic below it, exact rows shown as exact (no k = 7.17, no hidden
'–'), both marginal-likelihood estimators with an agreement column, Pareto-k and LOO-PIT plots,
every evidence row labelled with arm, time and statistic."""

from __future__ import annotations

import html as htmllib
import json
import re
import shutil


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", html)))


def _section(html: str, sid: str) -> str:
    start = html.index(f'<section id="{sid}">')
    end = html.find("<section id=", start + 10)
    return html[start: end if end > 0 else None]


def test_verdict_headline_and_points(rendered_comparison):
    html = rendered_comparison.read_text()
    head = _section(html, "header")
    assert re.search(r"Verdict: '(via-nr|direct)' and '(via-nr|direct)' cannot be told apart by PSIS-LOO", _text(head))
    assert head.count("<li>") == 3
    for aspect in ("not decided", "why", "robustness"):
        assert f'<span class="tag aspect">{aspect}</span>' in head


def test_banner_reflects_pareto_k_and_estimator_agreement(rendered_comparison):
    head = _text(_section(rendered_comparison.read_text(), "header"))
    # the synthetic comparison: run 'direct' failed its gates, unreliable PSIS rows, estimators disagree
    assert "CONVERGENCE GATES FAILED: runs direct." in head
    assert "Also failed: PSIS-LOO reliability over studies (Pareto k), marginal-likelihood estimators agree." in head
    assert "Passed: same evidence." in head
    assert "SMC and bridge sampling disagree for via-nr vs direct (opposite signs)" in head
    assert "exact studies (constant log-likelihood, not counted)" in head
    assert "All convergence gates passed" not in head


def test_exact_rows_and_agreement_column(rendered_comparison):
    html = rendered_comparison.read_text()
    pw = _section(html, "pointwise")
    assert pw.count("exact (constant)") == 2 * 2  # two exact rows x two hypotheses
    assert "k not estimable" in pw
    elpd = _text(_section(html, "elpd"))
    assert "exact studies (constant)" in elpd and "not recorded" not in elpd
    bf = _section(html, "bayes-factors")
    assert "<th>agreement</th>" in bf and "DISAGREE" in bf and "opposite signs" in bf
    assert "log BF, SMC (± MC SE)" in bf and "log BF, bridge (± MC SE)" in bf
    assert "Both estimators side by side" in bf


def test_every_pointwise_row_says_arm_time_and_statistic(rendered_comparison):
    pw = _section(rendered_comparison.read_text(), "pointwise")
    rows = re.findall(r'<td class="mono">(EV\d+)</td>\s*<td>(.*?)</td>', pw, re.S)
    assert rows
    labels = {}
    for eid, cell in rows:
        t = _text(cell)
        assert "arm:" in t and ";" in t, (eid, t)
        labels[eid] = t
    yi = [labels[e] for e in ("EV002", "EV003", "EV004", "EV005", "EV006", "EV007") if e in labels]
    assert len(yi) == 6 and len(set(yi)) == 6  # Yi 2022's six p-value rows are distinguishable
    assert "arm: NMN 300 mg/day · day 30 · blood unspecified; p ≤ 0.001 vs placebo" in yi[0]


def test_old_comparison_json_is_read_without_claims(synth_comparison, tmp_path):
    """A comparison.json written before issue 18 (k_max null, no row status) shows 'not
    recorded' rather than a reassuring 'none' or a bare dash."""
    from nadfit.fitting.comparison.pipeline import render_comparison_folder

    old = tmp_path / "old"
    shutil.copytree(synth_comparison, old)
    comp = json.loads((old / "comparison.json").read_text())
    for h in comp["loo"]:
        for k in ("n_exact", "exact_rows", "k_not_estimable_rows"):
            comp["loo"][h].pop(k, None)
        comp["loo"][h]["k_max"] = None
    for p in comp["pointwise"]:
        p.pop("loo_status", None)
    for k in ("verdict_parts", "loo_pit", "run_status"):
        comp.pop(k, None)
    (old / "comparison.json").write_text(json.dumps(comp))
    html = render_comparison_folder(old).read_text()
    elpd = _text(_section(html, "elpd"))
    assert "not recorded" in elpd
    assert "Verdict:" in html and "is preferred by LOO" in html  # the plain-text verdict
    assert "k not recorded" in _section(html, "pointwise")
