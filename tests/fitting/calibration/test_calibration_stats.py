"""Statistics of the calibration studies (fast; no fitting)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nadfit.fitting.calibration import stats


def test_wilson_interval_matches_closed_form_and_bounds():
    # Agresti & Coull (1998) example: 0 successes of 10 -> upper bound 0.2775 at 95 %
    lo, hi = stats.wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    lo, hi = stats.wilson_interval(10, 10)
    assert hi == pytest.approx(1.0) and lo == pytest.approx(1 - 0.2775, abs=1e-4)
    # symmetric around 1/2 for k = n/2, narrower for larger n, and containing p-hat
    a = stats.wilson_interval(5, 10)
    b = stats.wilson_interval(50, 100)
    assert a[0] + a[1] == pytest.approx(1.0) and b[1] - b[0] < a[1] - a[0]
    lo, hi = stats.wilson_interval(3, 17)
    assert lo < 3 / 17 < hi
    assert all(math.isnan(x) for x in stats.wilson_interval(0, 0))
    with pytest.raises(ValueError):
        stats.wilson_interval(5, 3)


def test_wilson_interval_coverage_by_simulation():
    """The 95 % Wilson interval covers p in about 95 % of binomial samples (n = 30, p = 0.3)."""
    rng = np.random.default_rng(1)
    ks = rng.binomial(30, 0.3, size=4000)
    inside = np.array([lo <= 0.3 <= hi for lo, hi in (stats.wilson_interval(k, 30) for k in range(31))])
    cover = inside[ks].mean()
    assert 0.93 <= cover <= 0.97


def test_confusion_summary_counts_and_rates():
    picks = [("a", "a"), ("a", "b"), ("b", "b"), ("b", "b"), ("c", "a")]
    s = stats.confusion_summary(picks, ["a", "b", "c"])
    assert s["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert s["recovery"]["k"] == 3 and s["recovery"]["n"] == 5
    assert s["per_hypothesis_recovery"]["b"]["rate"] == 1.0
    assert s["rates"]["a"]["b"]["low"] < 0.5 < s["rates"]["a"]["b"]["high"]


def test_uniformity_decision_bonferroni():
    d = stats.uniformity_decision({"x": 0.5, "y": 0.004, "z": 0.0001}, alpha=0.01)
    assert d["threshold"] == pytest.approx(0.01 / 3)
    assert d["passed"] == {"x": True, "y": True, "z": False}
    assert d["failed"] == ["z"] and not d["all_pass"]
    assert not stats.uniformity_decision({"x": float("nan")})["all_pass"]


def test_uniformity_decision_on_sbc_ranks_false_alarm_and_power():
    """Uniform ranks pass (family-wise), ranks of an overconfident posterior fail."""
    from nadfit.fitting.calibration.sbc import uniformity

    rng = np.random.default_rng(3)
    L, n = 99, 200
    good = {f"p{i}": list(rng.integers(0, L + 1, n)) for i in range(10)}
    assert all(uniformity(good, L)[3].values())
    # posterior N(m, 1) with m = truth + N(0, 1) noise is calibrated; draws from N(m, 0.3^2)
    # (overconfident) put the truth in the tails: U-shaped ranks
    truth = rng.standard_normal(n)
    m = truth + rng.standard_normal(n)
    draws = m[:, None] + 0.3 * rng.standard_normal((n, L))
    bad = {"q": [int(x) for x in np.sum(draws < truth[:, None], axis=1)]}
    assert not uniformity({**good, **bad}, L)[3]["q"]


def test_fractional_ranks_are_in_unit_interval_and_order_preserving():
    f = stats.fractional_ranks([0, 5, 99], 99, seed=2)
    assert np.all((f > 0) & (f < 1)) and f[0] < f[1] < f[2]


def test_coverage_counting():
    d = np.arange(1000) / 1000.0  # uniform on [0, 1)
    c = stats.covers(d, 0.5)
    assert c["covered_50"] and c["covered_90"] and c["pit"] == pytest.approx(0.5)
    c = stats.covers(d, 0.8)  # outside the 50 % (0.25..0.75), inside the 90 % (0.05..0.95)
    assert not c["covered_50"] and c["covered_90"]
    c = stats.covers(d, 0.99)
    assert not c["covered_50"] and not c["covered_90"]
    rows = [{"study": "s1", "covered_50": True, "covered_90": True},
            {"study": "s1", "covered_50": False, "covered_90": True},
            {"study": "s2", "covered_50": False, "covered_90": False},
            {"study": "s2", "covered_50": None, "covered_90": None}]
    t = stats.coverage_table(rows)
    assert t["overall"]["covered_50"]["k"] == 1 and t["overall"]["covered_50"]["n"] == 3
    assert t["overall"]["covered_90"]["k"] == 2
    assert t["groups"]["s2"]["covered_90"]["n"] == 1


def test_coverage_of_calibrated_predictions_is_nominal():
    rng = np.random.default_rng(5)
    rows = []
    for i in range(400):
        mu = rng.normal()
        rows.append({"study": "s", **stats.covers(mu + rng.standard_normal(2000), mu + rng.standard_normal())})
    t = stats.coverage_table(rows)["overall"]
    assert t["covered_50"]["low"] <= 0.5 <= t["covered_50"]["high"]
    assert t["covered_90"]["low"] <= 0.9 <= t["covered_90"]["high"]


def test_posterior_model_probs_arithmetic():
    p = stats.posterior_model_probs({"a": 0.0, "b": math.log(3.0)}, {"a": 0.5, "b": 0.5})
    assert p["a"] == pytest.approx(0.25) and p["b"] == pytest.approx(0.75)
    p = stats.posterior_model_probs({"a": 0.0, "b": 0.0}, {"a": 0.2, "b": 0.8})
    assert p["b"] == pytest.approx(0.8)
    p = stats.posterior_model_probs({"a": -1e4, "b": 0.0}, {"a": 0.5, "b": 0.5})  # no overflow
    assert p["b"] == pytest.approx(1.0)


def test_bf_calibration_exact_bayes_is_consistent_and_overconfidence_is_not():
    """Two simple hypotheses y ~ N(+-1, 1): exact posterior probabilities average to the prior;
    probabilities computed as if the data were 4x more informative do not."""
    rng = np.random.default_rng(11)
    prior = {"neg": 0.3, "pos": 0.7}
    good, bad = [], []
    for _ in range(3000):
        g = "pos" if rng.random() < prior["pos"] else "neg"
        y = (1.0 if g == "pos" else -1.0) + rng.standard_normal()
        ll = {"neg": -0.5 * (y + 1) ** 2, "pos": -0.5 * (y - 1) ** 2}
        good.append({"generating": g, "probs": stats.posterior_model_probs(ll, prior)})
        bad.append({"generating": g, "probs": stats.posterior_model_probs({h: 4 * v for h, v in ll.items()},
                                                                          {"neg": 0.5, "pos": 0.5})})
    r = stats.bf_calibration(good, prior)
    assert r["all_consistent"] is True
    assert r["hypotheses"]["pos"]["mean_posterior"] == pytest.approx(0.7, abs=0.03)
    assert stats.bf_calibration(bad, prior)["all_consistent"] is False


def test_main_effect_and_contraction_forecast_gaussian_reference():
    """For a Gaussian prior and likelihood the forecast equals the exact contraction r / (1 + r)."""
    rng = np.random.default_rng(2)
    for r in (0.25, 1.0, 4.0):
        s_p, s_l = 1.0, 1.0 / math.sqrt(r)
        theta = rng.normal(0, s_p, 20000)
        other = rng.normal(0, 1, 20000)  # a parameter the likelihood ignores
        ll = -0.5 * theta ** 2 / s_l ** 2
        f = stats.forecast_contraction(math.sqrt(stats.main_effect_variance(theta, ll, bins=50)))
        assert f == pytest.approx(r / (1 + r), abs=0.05)
        assert stats.forecast_contraction(math.sqrt(stats.main_effect_variance(other, ll, bins=50))) < 0.1
    assert stats.forecast_contraction(0.0) == 0.0
