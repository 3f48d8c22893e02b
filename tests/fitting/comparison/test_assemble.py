"""Comparison arithmetic on synthetic runs: attribution sums, stacking, refusals."""

import numpy as np
import pytest

from nadfit.datasets.errors import UserError
from nadfit.fitting.comparison.assemble import (BAD_K, CONSTANT_LL_TOL, build_comparison, load_runs, loo_status,
                                                psis_loo, stacking_weights)
from tests.fitting.synthetic_runs import make_run

IDS = ["EV1", "EV2", "EV3", "EV4", "EV5", "EV6"]
STUDIES = ["a", "a", "b", "b", "c", "d"]


def _ll(shift, seed):
    rng = np.random.default_rng(seed)
    base = rng.normal(-1.0, 0.3, size=(2, 200, len(IDS)))
    return base + np.asarray(shift)


@pytest.fixture()
def runs(tmp_path):
    dirs = [
        make_run(tmp_path / "direct", "direct", _ll([0, 0, -2, -2, 0, 0], 1), IDS, STUDIES),
        make_run(tmp_path / "via-nr", "via-nr", _ll([-2, -2, 0, 0, 0, 0], 2), IDS, STUDIES),
        make_run(tmp_path / "mixed", "mixed", _ll([-0.2, -0.2, -0.2, -0.2, 0, 0], 3), IDS, STUDIES, mixed=True),
    ]
    return load_runs(dirs)


def test_pointwise_and_study_attribution_sum_to_totals(runs):
    cmp = build_comparison(runs)
    for h in runs:
        total = cmp["loo"][h]["elpd"]
        pointwise = sum(r["elpd"][h] for r in cmp["pointwise"])
        by_study = sum(s["elpd"][h] for s in cmp["by_study"])
        assert pointwise == pytest.approx(total, abs=1e-4)
        assert by_study == pytest.approx(total, abs=1e-4)
    assert [s["study_id"] for s in cmp["by_study"]] == ["a", "b", "c", "d"]


def test_ranking_weights_and_verdict(runs):
    cmp = build_comparison(runs)
    assert cmp["ranking"][0]["hypothesis"] == "mixed"
    assert cmp["ranking"][0]["elpd_diff"] == 0
    w = cmp["stacking_weights"]
    assert sum(w.values()) == pytest.approx(1.0, abs=1e-6) and min(w.values()) >= 0
    # findings that pull in opposite directions show up in the attribution
    a = next(s for s in cmp["by_study"] if s["study_id"] == "a")
    b = next(s for s in cmp["by_study"] if s["study_id"] == "b")
    assert a["elpd"]["direct"] > a["elpd"]["via-nr"] and b["elpd"]["via-nr"] > b["elpd"]["direct"]
    assert "favours 'mixed'" in cmp["verdict"]
    assert cmp["phi_share"] is not None and "population_median_system" in cmp["phi_share"]


def test_stacking_prefers_the_model_that_predicts_each_point():
    elpd = {"x": np.log(np.array([0.9, 0.9, 0.1, 0.1])), "y": np.log(np.array([0.1, 0.1, 0.9, 0.9]))}
    w = stacking_weights(elpd, {})
    assert w["x"] == pytest.approx(0.5, abs=0.02)
    elpd["y"] = np.log(np.array([0.1, 0.1, 0.1, 0.1]))
    assert stacking_weights(elpd, {})["x"] > 0.95


def test_psis_loo_matches_exact_for_flat_likelihood():
    ll = np.full((2, 100, 3), -0.5)
    res = psis_loo(ll)
    assert res["elpd"] == pytest.approx(-1.5, abs=1e-9)


def test_refuses_runs_on_different_evidence(tmp_path):
    a = make_run(tmp_path / "a", "direct", _ll([0] * 6, 1), IDS, STUDIES, fingerprint="1" * 64)
    b = make_run(tmp_path / "b", "via-nr", _ll([0] * 6, 2), IDS, STUDIES, fingerprint="2" * 64)
    with pytest.raises(UserError, match="different evidence"):
        load_runs([a, b])


def test_refuses_duplicate_hypothesis_and_failed_gates(tmp_path):
    a = make_run(tmp_path / "a", "direct", _ll([0] * 6, 1), IDS, STUDIES)
    b = make_run(tmp_path / "b", "direct", _ll([0] * 6, 2), IDS, STUDIES)
    with pytest.raises(UserError, match="two runs for hypothesis"):
        load_runs([a, b])
    c = make_run(tmp_path / "c", "via-nr", _ll([0] * 6, 3), IDS, STUDIES, status="failed_gates")
    with pytest.raises(UserError, match="failed its diagnostics gates"):
        load_runs([a, c])
    assert set(load_runs([a, c], allow_failed=True)) == {"direct", "via-nr"}


def test_constant_and_nearly_constant_rows_are_exact_not_bad_k():
    """Rows whose log-likelihood barely varies got k = 7.17, 7.73 or NaN (shown as a hidden '–')
    and inflated 'PSIS is unreliable for N rows': they are exact to CONSTANT_LL_TOL nats."""
    rng = np.random.default_rng(5)
    ll = rng.normal(-1.0, 0.3, size=(2, 200, 5))
    ll[..., 1] = -0.02                                                  # constant
    ll[..., 2] = -0.02 - rng.uniform(0, 1.2e-3, size=(2, 200))          # k was 7.73 on a real fit
    ll[..., 3] = np.log(0.02) + 6e-9 * rng.normal(size=(2, 200))        # k was NaN
    ll[..., 4] = -0.02 - rng.uniform(0, 0.9 * CONSTANT_LL_TOL, size=(2, 200))
    res = psis_loo(ll)
    assert loo_status(res) == ["ok", "exact", "exact", "exact", "exact"]
    assert not (res["k"] > BAD_K).any() and np.isfinite(res["k"]).all()
    for j in range(1, 5):
        lo, hi = ll[..., j].min(), ll[..., j].max()
        assert lo - 1e-12 <= res["elpd_i"][j] <= hi + 1e-12  # inside the row's range: exact to its width
    assert res["elpd_i"][1] == pytest.approx(-0.02, abs=1e-12)


def test_rows_whose_k_cannot_be_estimated_count_as_unreliable():
    """Ties in the importance ratios (a finding on its floor in a few draws) break Pareto
    smoothing: plain importance sampling is used and the row counts as unreliable, never as ok."""
    rng = np.random.default_rng(6)
    ll = rng.normal(-1.0, 0.3, size=(2, 200, 3))
    ll[..., 1] = -0.02
    ll[0, :5, 1] = -3.9
    ll[..., 2] = -0.02
    ll[0, :1, 2] = -3.9
    res = psis_loo(ll)
    st = loo_status(res)
    assert st[0] == "ok" and all(s in ("high_k", "not_estimable") for s in st[1:])
    assert (res["k"][1:] > BAD_K).all()


def test_comparison_reports_exact_rows_and_counts_only_unreliable_ones(tmp_path):
    shift = np.zeros(6)
    lls = {}
    for h, seed in (("direct", 1), ("via-nr", 2)):
        ll = _ll(shift, seed)
        ll[..., 4] = -0.02 - np.random.default_rng(seed).uniform(0, 1e-3, size=ll.shape[:2])   # nearly constant
        ll[..., 5] = -0.02
        ll[0, :5, 5] = -3.9                                                                       # ties: unreliable
        lls[h] = ll
    runs = load_runs([make_run(tmp_path / h, h, ll, IDS, STUDIES) for h, ll in lls.items()])
    cmp = build_comparison(runs)
    for h in lls:
        lo = cmp["loo"][h]
        assert lo["exact_rows"] == ["EV5"] and lo["n_exact"] == 1
        assert lo["bad_k_rows"] == ["EV6"] and lo["n_bad_k"] == 1
        assert lo["k_max"] is not None and lo["k_max"] < 7  # never a hidden '–', never the exact row's 7.x
    row5 = next(r for r in cmp["pointwise"] if r["evidence_id"] == "EV5")
    row6 = next(r for r in cmp["pointwise"] if r["evidence_id"] == "EV6")
    assert row5["loo_status"] == {"direct": "exact", "via-nr": "exact"} and row5["pareto_k"]["direct"] is None
    assert set(row6["loo_status"].values()) <= {"high_k", "not_estimable"}
    assert "1 row(s) of direct" in cmp["verdict"] or "direct 1" in cmp["verdict"]
