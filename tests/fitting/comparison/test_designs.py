"""Which human trials could tell the hypotheses apart (fitting.comparison.designs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from nadfit.fitting.comparison import designs as D


def _pred(mu, sigma_het=0.0, sigma_arm=0.1, sigma_person=0.3):
    mu = np.atleast_2d(np.asarray(mu, dtype=float))
    s = len(mu)
    full = lambda x: np.full(s, float(x))  # noqa: E731
    return D.Predictive(mu, full(sigma_het), full(sigma_arm), full(sigma_person))


def _cov(a, c, v, m):
    k = len(m)
    return a * np.eye(k) + c * np.ones((k, k)) + v * np.outer(m, m)


def test_gaussian_logpdf_equals_scipy():
    rng = np.random.default_rng(3)
    k, C, M = 4, 6, 9
    m = rng.normal(0.5, 0.3, (C, k))
    a, c, v = rng.uniform(0.01, 0.1, C), rng.uniform(0.001, 0.05, C), rng.uniform(0.0, 0.2, C)
    v[0] = 0.0  # no study effect
    c[1] = 0.0  # no shared placebo error
    y = rng.normal(0.5, 0.4, (M, k))
    got = D.gaussian_logpdf(y, m, a, c, v)
    ref = np.array([[multivariate_normal(m[j], _cov(a[j], c[j], v[j], m[j])).logpdf(y[i]) for j in range(C)]
                    for i in range(M)])
    assert np.max(np.abs(got - ref)) < 1e-10


def test_simulated_trials_have_the_scored_covariance():
    """The trials simulated from a draw follow the Gaussian that scores them (same moments)."""
    p = _pred([[0.3, 0.6, 1.0]], sigma_het=0.3, sigma_arm=0.08, sigma_person=0.25)
    n = 20
    y, s = p.simulate(n, 200_000, np.random.default_rng(0))
    m, a, c, v = p.moments(n)
    assert np.all(s == 0)
    assert np.allclose(y.mean(0), m[0], atol=0.01)
    assert np.allclose(np.cov(y.T), _cov(a[0], c[0], v[0], m[0]), atol=0.003)
    # the study effect's mean and variance are the log-normal's
    eh = math.exp(0.3 ** 2 / 2)
    assert np.allclose(m[0], eh * np.array([0.3, 0.6, 1.0]))
    assert v[0] == pytest.approx(math.expm1(0.09) * math.exp(0.09) / eh ** 2)


def test_expected_log_bf_of_point_predictions_is_the_gaussian_kl():
    """One draw per hypothesis, no study effect: the trial's predictions are two Gaussians with
    one covariance, whose KL divergence is d^T Sigma^-1 d / 2."""
    n = 30
    mu_a, mu_b = np.array([0.3, 0.8]), np.array([0.35, 0.6])
    preds = {"a": _pred(np.repeat(mu_a[None], 2, 0)), "b": _pred(np.repeat(mu_b[None], 2, 0))}
    _, a, c, v = preds["a"].moments(n)
    d = mu_a - mu_b
    kl = 0.5 * d @ np.linalg.solve(_cov(a[0], c[0], 0.0, mu_a), d)
    res = D.expected_log_bf("a", preds, n, trials=20_000, seed=1)["b"]
    assert res["lower"] == pytest.approx(res["upper"])  # every draw is the same
    assert abs(res["mean"] - kl) < 4 * res["mcse"]
    assert kl > 10 * res["mcse"]  # the test can tell a wrong answer


def test_expected_log_bf_of_spread_predictions_is_bracketed():
    """A's draws spread (mu ~ N(0, tau^2)), B a point: the predictions are N(0, tau^2 + s^2) and
    N(0, s^2), with a known KL; the bracket (lower, upper) must contain it within MC error."""
    rng = np.random.default_rng(4)
    tau, n = 0.3, 30
    mu = rng.normal(0.0, tau, (600, 1))
    preds = {"a": _pred(mu), "b": _pred(np.zeros((600, 1)))}
    _, a, c, _ = preds["a"].moments(n)
    s2 = a[0] + c[0]
    r = (tau ** 2 + s2) / s2
    kl = 0.5 * (r - 1.0 - math.log(r))
    res = D.expected_log_bf("a", preds, n, trials=8000, seed=2)["b"]
    assert res["lower"] - 4 * res["mcse"] <= kl <= res["upper"] + 4 * res["mcse"]
    assert res["upper"] - res["lower"] < 0.05  # 600 draws resolve this prediction
    assert 0.5 < res["p_favours_true"] < 1.0


def test_identical_predictions_tell_nothing_apart():
    rng = np.random.default_rng(5)
    mu = rng.normal(0.5, 0.2, (300, 3))
    preds = {"a": _pred(mu, 0.2), "b": _pred(mu, 0.2)}
    res = D.expected_log_bf("a", preds, 30, trials=4000, seed=3)["b"]
    assert abs(res["mean"]) < 4 * res["mcse"] + 0.02
    out = D.told_apart({"a": {"b": res}, "b": {"a": res}})
    assert out == [{"hypotheses": ["a", "b"], "weaker_expected_log_bf": res["mean"], "verdict": "not informative"}]


def test_verdict_takes_the_weaker_direction():
    lbf = {"x": {"y": {"mean": 5.0}}, "y": {"x": {"mean": 1.5}}}
    assert D.told_apart(lbf)[0]["verdict"] == "informative"
    lbf["y"]["x"]["mean"] = 3.2
    assert D.told_apart(lbf)[0]["verdict"] == "decisive"
    lbf["y"]["x"]["mean"] = 0.2
    assert D.told_apart(lbf)[0]["verdict"] == "not informative"


def test_designs_have_distinct_labelled_arms():
    keys = [d.key for d in D.DESIGNS]
    assert len(keys) == len(set(keys))
    assert sum(d.control for d in D.DESIGNS) >= 1
    for d in D.DESIGNS:
        assert len({a.key for a in d.arms}) == len(d.arms) >= 2
    assert D.Arm("NMN", 1000, 2).label == "NMN 2 x 500 mg/day"
    assert len(D.all_arms()) == len({a.key for d in D.DESIGNS for a in d.arms})


def test_compare_designs_sections():
    rng = np.random.default_rng(6)
    preds = {h: {d.key: _pred(rng.normal(0.4 + 0.2 * i, 0.1, (40, len(d.arms))), 0.2) for d in D.DESIGNS}
             for i, h in enumerate(("via-nr", "direct"))}
    out = D.compare_designs(preds, arm_sizes=(10, 100), trials=200)
    assert out["arm_sizes"] == [10, 100] and len(out["designs"]) == len(D.DESIGNS)
    for d in out["designs"]:
        assert [b["arm_size"] for b in d["by_arm_size"]] == [10, 100]
        for b in d["by_arm_size"]:
            assert set(b["expected_log_bf"]) == {"via-nr", "direct"}
            assert set(b["expected_log_bf"]["direct"]) == {"via-nr"}
            assert len(b["pairs"]) == 1
        q = d["arms"][0]["fold_change_mean_effect"]["direct"]
        assert q["q05"] <= q["median"] <= q["q95"]
    # more people per arm: less noise, so (here, with clearly different predictions) more separation
    first = out["designs"][0]["by_arm_size"]
    assert first[1]["pairs"][0]["weaker_expected_log_bf"] > first[0]["pairs"][0]["weaker_expected_log_bf"]


def test_nr_arms_do_not_depend_on_the_hypothesis():
    """NR takes ENT and NRK1 under every hypothesis: at the same parameters, its arms' blood
    NAD+ is the same under direct and via-nr, and NMN's is not (the route differs)."""
    import jax.numpy as jnp

    from nadfit.datasets import load_evidence
    from nadfit.models.model import EvidenceModel

    ev = load_evidence()
    md, mv = EvidenceModel("direct", ev), EvidenceModel("via-nr", ev)
    th = md.prior_median_theta()
    th = {k: jnp.asarray(v) for k, v in th.items()}
    arms = [D.Arm("NR", 250), D.Arm("NR", 1000), D.Arm("NMN", 1000)]
    spec = [(a.compound, a.mg_per_day, a.doses_per_day) for a in arms]
    bd, _ = md.blood_regimens(th, spec, 30)
    bv, _ = mv.blood_regimens(th, spec, 30)
    bd, bv = np.asarray(bd), np.asarray(bv)
    assert np.allclose(bd[:, :2], bv[:, :2], rtol=1e-12)
    assert abs(math.log(bd[30, 2]) - math.log(bv[30, 2])) > 1e-3
    # one course with both compounds equals separate courses per compound
    b_nr, _ = md.blood_curves(th, "NR", (250.0, 1000.0), 30)
    assert np.allclose(np.asarray(b_nr), bd[:, :2], rtol=1e-12)
