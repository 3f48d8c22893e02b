"""Marginal-likelihood estimators against models with a known answer.

* a conjugate one-parameter model (analytic evidence);
* the hierarchical, non-conjugate validation model of ``comparison.validation`` (12 dimensions with the
  centred funnel; evidence by quadrature over tau).

Tolerance: each estimator must land within ``Z`` of its *stated* Monte Carlo error plus a small floor.
``Z = 4``: a correct estimator with a calibrated error fails at most ~1 in 10^4 per check (6e-5 for a
normal error). ``FLOOR = 0.05`` nats covers what the stated error cannot see (the quadrature is exact to
~1e-9; for SMC the spread of a few runs estimates its own SE with few degrees of freedom, see below).
Each check is also shown to fail: a truth moved by 0.5 nats (bridge) or 1 nat (SMC, whose stated error
comes from few runs) and a wrong estimator (harmonic mean) are rejected by the same criterion, so the
tolerance is tight enough to matter.
"""

import math

import numpy as np
import pymc as pm
import pytest
from scipy import stats
from scipy.special import logsumexp

from nadfit.fitting.comparison import validation
from nadfit.fitting.comparison.marginal import bridge_log_ml_from_draws, smc_log_ml

Y = np.array([0.3, 1.1, -0.4, 0.9, 1.6, 0.2, 0.8])
Z = 4.0
FLOOR = 0.05


def within(est: float, se: float, truth: float, floor: float = FLOOR) -> bool:
    return abs(est - truth) < Z * se + floor


def analytic_log_ml(y, tau=2.0):
    # y_i = mu + e_i, e_i ~ N(0, 1), mu ~ N(0, tau^2): y ~ MVN(0, I + tau^2 11')
    cov = np.eye(len(y)) + tau ** 2 * np.ones((len(y), len(y)))
    return float(stats.multivariate_normal(np.zeros(len(y)), cov).logpdf(y))


def conjugate_model(tau=2.0):
    with pm.Model() as m:
        mu = pm.Normal("mu", 0.0, tau)
        pm.Normal("y", mu, 1.0, observed=Y)
    return m


def exact_posterior_draws(n, tau=2.0, seed=0):
    prec = 1 / tau ** 2 + len(Y)
    mean = Y.sum() / prec
    return np.random.default_rng(seed).normal(mean, 1 / math.sqrt(prec), size=n)


def test_bridge_sampling_matches_analytic():
    res = bridge_log_ml_from_draws(conjugate_model(), {"mu": exact_posterior_draws(2000)})
    assert res["mc_se"] < 0.05
    assert within(res["log_ml"], res["mc_se"], analytic_log_ml(Y))


# ---- the hierarchical validation model -------------------------------------------------------------

def test_validation_evidence_quadrature_agrees_with_a_grid_and_with_scipy():
    """The known evidence itself: the closed-form Gaussian marginal equals scipy's, and the adaptive
    quadrature equals a plain trapezoid rule on a fine grid over tau."""
    for tau in (0.05, 1.3, 7.0):
        cov = np.diag(validation.SIGMA ** 2 + tau ** 2) + validation.MU_SD ** 2
        ref = stats.multivariate_normal(np.zeros(len(validation.Y)), cov).logpdf(validation.Y)
        assert validation.log_marginal_given_tau(tau) == pytest.approx(ref, abs=1e-9)
    grid = np.linspace(0.0, 60.0, 200001)
    logf = validation.log_marginal_given_tau(grid) + stats.halfnorm(scale=validation.TAU_SD).logpdf(grid)
    trap = logsumexp(logf) + math.log(grid[1] - grid[0])  # integrand ~0 at both ends
    assert validation.log_evidence() == pytest.approx(trap, abs=1e-6)


@pytest.fixture(scope="module")
def hier():
    return validation.pymc_model(), validation.log_evidence()


def test_bridge_warp3_matches_known_evidence_of_the_hierarchical_model(hier):
    model, truth = hier
    draws = validation.exact_posterior_draws(1000, seed=3)
    res = bridge_log_ml_from_draws(model, draws, seed=3)
    assert res["method"].startswith("bridge (warp-III")
    assert 0 < res["mc_se"] < 0.1
    assert within(res["log_ml"], res["mc_se"], truth)
    # the check can fail: a truth moved by 0.5 nats is rejected ...
    assert not within(res["log_ml"], res["mc_se"], truth + 0.5)
    # ... and so is a wrong estimator (harmonic mean of the likelihood over the same posterior draws)
    loglik = stats.norm(draws["theta"], validation.SIGMA).logpdf(validation.Y).sum(1)
    harmonic = -(logsumexp(-loglik) - math.log(len(loglik)))
    assert not within(harmonic, res["mc_se"], truth)


def test_bridge_error_accounts_for_autocorrelation(hier):
    """The same draws repeated in runs of 10 (ESS ~ n/10) must state a larger error than independent draws."""
    model, _ = hier
    iid = validation.exact_posterior_draws(600, seed=5)
    sticky = {k: np.repeat(v[:60], 10, axis=0) for k, v in iid.items()}
    a = bridge_log_ml_from_draws(model, iid, seed=1)
    b = bridge_log_ml_from_draws(model, sticky, seed=1)
    assert b["neff"] < 0.3 * a["neff"]
    assert b["mc_se"] > 1.5 * a["mc_se"]


def test_smc_matches_known_evidence_of_the_hierarchical_model(hier):
    """Six independent runs of 250 particles (5 HMC steps x 10 leapfrog). The stated error is the spread of
    the runs over sqrt(6), itself estimated with 5 degrees of freedom, so the normal Z is replaced by
    Student-t's 99.9 % point for 5 d.o.f. (5.9); the same criterion rejects a truth moved by 1 nat (the
    agreement that the comparison demands of SMC and bridge sampling)."""
    model, truth = hier
    res = smc_log_ml(model, runs=SMC_RUNS, draws=250, seed=2, mcmc_steps=5, leapfrog=10)
    runs = np.array(res["log_ml_runs"])
    assert len(runs) == SMC_RUNS and np.all(np.isfinite(runs))
    assert res["log_ml_mc_se"] > 0
    assert all(s >= 3 for s in res["stages"])  # the tempering really is adaptive here (several stages)
    assert smc_within(res, truth)
    assert not smc_within(res, truth + 1.0)


SMC_RUNS = 6


def smc_within(res: dict, truth: float) -> bool:
    t = stats.t(len(res["log_ml_runs"]) - 1).ppf(0.999)
    return abs(res["log_ml_mean"] - truth) < t * res["log_ml_mc_se"] + FLOOR


@pytest.mark.slow
def test_smc_and_bridge_on_the_hierarchical_model_larger():
    """Larger version: 2000 particles x 6 runs, 4000 exact draws; both inside their error + floor."""
    model, truth = validation.pymc_model(), validation.log_evidence()
    assert smc_within(smc_log_ml(model, runs=SMC_RUNS, draws=2000, seed=11), truth)
    b = bridge_log_ml_from_draws(model, validation.exact_posterior_draws(4000, seed=11), seed=11)
    assert within(b["log_ml"], b["mc_se"], truth)


def test_smc_prior_draws_raise_no_third_party_warning():
    """SMC's initial population is drawn without Numba's object-mode warning (a truncated normal,
    as the production gamma prior; `nadfit compare --smc-runs` printed it)."""
    import warnings

    import pymc as pm

    from nadfit.fitting.comparison.marginal import _flat_jax_parts

    with pm.Model() as m:
        x = pm.TruncatedNormal("x", 0.0, 0.4, lower=-0.9, upper=0.9)
        pm.Normal("y", x, 1.0, observed=[0.1, 0.2])
    _, _, draw_prior, dim = _flat_jax_parts(m)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rows = draw_prior(5, 1)
    assert rows.shape == (5, dim) and np.all(np.isfinite(rows))


SIDE_BY_SIDE = """
import json
from nadfit.fitting.comparison import validation
from nadfit.fitting.comparison.marginal import smc_log_ml
model = validation.pymc_model()
kw = dict(runs=3, draws=100, seed=4, mcmc_steps=2, leapfrog=4)
out = {str(d): smc_log_ml(model, devices=d, **kw) for d in (1, 2, 3)}
print(json.dumps({d: [r["log_ml_runs"], r["stages"], r["runs_side_by_side"]] for d, r in out.items()}))
"""


def test_smc_runs_side_by_side_give_each_run_its_own_estimate(tmp_path):
    """The independent SMC runs on separate host devices (3 side by side, or 2 and a padded group
    of 1) give each run the estimate and the stage count it gets alone on one device; only the
    compiled program differs, so the estimates agree to rounding, not bit for bit."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=3", JAX_ENABLE_X64="1")
    env.pop("JAX_NUM_CPU_DEVICES", None)
    out = subprocess.run([sys.executable, "-c", SIDE_BY_SIDE], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    alone, runs_alone, width = res["1"]
    assert width == 1 and len(alone) == 3 and np.all(np.isfinite(alone))
    assert len(set(alone)) == 3  # three different runs, not one repeated
    for d in ("2", "3"):
        vals, stages, width = res[d]
        assert width == int(d)
        assert stages == runs_alone
        np.testing.assert_allclose(vals, alone, rtol=0, atol=1e-8)
