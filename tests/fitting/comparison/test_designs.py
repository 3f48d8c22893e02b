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


def _numerical_trial_logpdf(y, mu, sig, a, c):
    """log integral N(y; e^(sig z) mu, a I + c 11^T) phi(z) dz by the trapezoid rule on a fine
    grid (the reference for the adaptive quadrature)."""
    k = len(mu)
    z = np.linspace(-12.0, 12.0, 24001)
    h = np.exp(sig * z)
    lp = multivariate_normal(np.zeros(k), _cov(a, c, 0.0, mu)).logpdf(y[None, :] - h[:, None] * mu[None, :])
    lp = lp - 0.5 * z ** 2 - 0.5 * math.log(2 * math.pi)
    mx = lp.max()
    return mx + math.log(np.trapezoid(np.exp(lp - mx), z))


def test_trial_logpdf_integrates_the_study_effect():
    """Adaptive Gauss-Hermite quadrature against a fine grid, for trials simulated from every
    component and scored by all (as the analysis does), over the range of the fits' settings:
    wide and narrow integrands (sigma_het 0.01-0.6, arm noise 1e-4 to 0.1, 1-5 arms)."""
    rng = np.random.default_rng(0)
    worst, n = 0.0, 0
    for _ in range(40):
        k, S = int(rng.integers(1, 6)), 3
        mu = np.abs(rng.normal(0.8, 0.6, (S, k))) * rng.choice([0.3, 1.0, 3.0], size=(S, 1))
        sig = rng.choice([0.01, 0.2, 0.4, 0.6], S)
        a = rng.choice([1e-4, 1e-3, 0.01, 0.1], S)
        c = a * rng.uniform(0.0, 2.0, S)
        src = rng.integers(0, S, 4)
        h = np.exp(sig[src] * rng.standard_normal(4))
        y = (h[:, None] * mu[src] + rng.standard_normal((4, k)) * np.sqrt(a[src])[:, None]
             - (rng.standard_normal(4) * np.sqrt(c[src]))[:, None])
        got = D.trial_logpdf(y, mu, sig, a, c)
        for j in range(S):
            for i in range(4):
                ref = _numerical_trial_logpdf(y[i], mu[j], sig[j], a[j], c[j])
                if ref > -30:  # far tails carry no weight in a mixture
                    n += 1
                    worst = max(worst, abs(got[i, j] - ref))
    assert n > 300 and worst < 0.02, (n, worst)


def test_trial_logpdf_without_study_effect_is_the_gaussian():
    rng = np.random.default_rng(1)
    k, S = 3, 4
    mu = rng.normal(0.5, 0.3, (S, k))
    a, c = rng.uniform(0.01, 0.1, S), rng.uniform(0.0, 0.05, S)
    y = rng.normal(0.5, 0.3, (5, k))
    got = D.trial_logpdf(y, mu, np.full(S, 1e-9), a, c)
    ref = np.array([[multivariate_normal(mu[j], _cov(a[j], c[j], 0.0, mu[j])).logpdf(y[i]) for j in range(S)]
                    for i in range(5)])
    assert np.max(np.abs(got - ref)) < 1e-8


def test_noise_of_a_trial_arm_and_its_shared_placebo():
    """a = sigma_arm^2 + sigma_person^2/n (the arm's own deviation and sampling error), c =
    sigma_person^2/n (the placebo arm's sampling error, shared by every contrast)."""
    p = _pred([[0.3, 0.6]], sigma_het=0.0, sigma_arm=0.08, sigma_person=0.25)
    a, c = p.noise(40)
    assert a[0] == pytest.approx(0.08 ** 2 + 0.25 ** 2 / 40)
    assert c[0] == pytest.approx(0.25 ** 2 / 40)


def test_simulated_trials_follow_the_scored_model():
    """Trials simulated from one draw: mean E[h] mu (h log-normal) and, without a study effect,
    the covariance a I + c 11^T that scores them."""
    mu = np.array([0.3, 0.6, 1.0])
    n = 20
    p = _pred([mu], sigma_het=0.3, sigma_arm=0.08, sigma_person=0.25)
    y, s = p.simulate(n, 200_000, np.random.default_rng(0))
    assert np.all(s == 0)
    assert np.allclose(y.mean(0), math.exp(0.3 ** 2 / 2) * mu, atol=0.01)
    p0 = _pred([mu], sigma_het=0.0, sigma_arm=0.08, sigma_person=0.25)
    y0, _ = p0.simulate(n, 200_000, np.random.default_rng(1))
    a, c = p0.noise(n)
    assert np.allclose(np.cov(y0.T), _cov(a[0], c[0], 0.0, mu), atol=0.002)


def test_expected_log_bf_of_point_predictions_is_the_gaussian_kl():
    """One draw per hypothesis and no study effect: the trial's predictions are two Gaussians
    with one covariance, whose KL divergence is d^T Sigma^-1 d / 2."""
    n = 30
    mu_a, mu_b = np.array([0.3, 0.8, 1.1]), np.array([0.35, 0.6, 0.7])
    preds = {"a": _pred(np.repeat(mu_a[None], 2, 0)), "b": _pred(np.repeat(mu_b[None], 2, 0))}
    a, c = preds["a"].noise(n)
    d = mu_a - mu_b
    kl = 0.5 * d @ np.linalg.solve(_cov(a[0], c[0], 0.0, mu_a), d)
    res = D.expected_log_bf("a", preds, n, trials=20_000, seed=1)["b"]
    assert abs(res["mean"] - kl) < 4 * res["mcse"]
    assert kl > 10 * res["mcse"]  # the test can tell a wrong answer
    assert all(abs(h - kl) < 6 * res["mcse"] for h in res["halves"])  # every draw is the same


def test_expected_log_bf_of_spread_predictions():
    """A's draws spread (mu ~ N(0, tau^2)), B a point: the predictions are N(0, tau^2 + s^2) and
    N(0, s^2), with a known KL; 600 draws resolve it."""
    rng = np.random.default_rng(4)
    tau, n = 0.3, 30
    mu = rng.normal(0.0, tau, (600, 1))
    preds = {"a": _pred(mu), "b": _pred(np.zeros((600, 1)))}
    a, c = preds["a"].noise(n)
    s2 = a[0] + c[0]
    r = (tau ** 2 + s2) / s2
    kl = 0.5 * (r - 1.0 - math.log(r))
    res = D.expected_log_bf("a", preds, n, trials=8000, seed=2)["b"]
    assert abs(res["mean"] - kl) < 4 * res["mcse"] + 0.02
    # each half of the draws carries its own draw noise: its estimate follows the KL of the
    # Gaussian with that half's own sample mean and variance, not the population's
    for i, h in enumerate(res["halves"]):
        x = mu[i::2, 0]
        kl_half = 0.5 * ((x.var() + s2) / s2 - 1.0 - math.log((x.var() + s2) / s2) + x.mean() ** 2 / s2)
        assert abs(h - kl_half) < 0.1, (h, kl_half)
    assert 0.5 < res["p_favours_true"] < 1.0


def test_identical_predictions_tell_nothing_apart():
    rng = np.random.default_rng(5)
    mu = rng.normal(0.5, 0.2, (300, 3))
    preds = {"a": _pred(mu, 0.2), "b": _pred(mu, 0.2)}
    res = D.expected_log_bf("a", preds, 30, trials=1000, seed=3)["b"]
    assert res["mean"] == 0.0 and res["halves"] == [0.0, 0.0]  # the same mixture scores every trial alike
    out = D.told_apart({"a": {"b": res}, "b": {"a": res}})
    assert out == [{"hypotheses": ["a", "b"], "weaker_expected_log_bf": 0.0, "verdict": "not informative"}]


def test_trials_are_scored_in_blocks(monkeypatch):
    """Blocks of trials (bounded memory) give the same numbers as one block."""
    rng = np.random.default_rng(8)
    preds = {"a": _pred(rng.normal(0.5, 0.2, (50, 2)), 0.2), "b": _pred(rng.normal(0.6, 0.2, (50, 2)), 0.2)}
    one = D.expected_log_bf("a", preds, 30, trials=500, seed=4)
    monkeypatch.setattr(D, "TRIAL_BLOCK", 64)
    again = D.expected_log_bf("a", preds, 30, trials=500, seed=4)
    assert again["b"]["mean"] == pytest.approx(one["b"]["mean"], abs=1e-9)


def test_verdict_takes_the_weaker_direction():
    lbf = {"x": {"y": {"mean": 5.0}}, "y": {"x": {"mean": 1.5}}}
    assert D.told_apart(lbf)[0]["verdict"] == "positive"
    lbf["y"]["x"]["mean"] = 3.2
    assert D.told_apart(lbf)[0]["verdict"] == "strong"
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
