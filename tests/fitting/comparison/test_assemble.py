"""Comparison arithmetic on synthetic runs: attribution sums, stacking, refusals."""

import numpy as np
import pytest

from nadfit.datasets.errors import UserError
from nadfit.fitting.comparison.assemble import build_comparison, load_runs, psis_loo, stacking_weights
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
