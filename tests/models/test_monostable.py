"""The NAMPT-NAD+ loop the model uses has one steady state for every input (models.core)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nadfit.models.core import _log_balance, monostability_bound, monostable_gamma

U = np.linspace(-8.0, 8.0, 4001)


def _sets(n, seed, tails=False):
    """Prior-like sets, or (``tails``) sets from the prior's tails where NUTS trajectories of the
    shipped fits diverged: weak inhibition, saturated consumption, small linear part."""
    rng = np.random.default_rng(seed)
    if tails:
        return (rng.lognormal(0.0, 2.0, n), rng.lognormal(-1.5, 1.0, n), rng.beta(1.0, 20.0, n),
                rng.uniform(-0.9, 0.9, n))
    return (rng.lognormal(np.log(66.0), 2.5, n), rng.lognormal(0.0, 1.2, n), rng.beta(1.0, 4.0, n),
            rng.uniform(-0.9, 0.9, n))


def _max_slope(j, e_base, beta, kappa, ell, gamma, c):
    f = _log_balance(U, j, e_base, beta, kappa, ell, gamma, c, np)
    return float(np.max(np.diff(f)))


def test_raw_gamma_can_break_monostability_and_the_models_gamma_cannot():
    """Over prior-like parameter sets and inputs, the balance with the raw gamma is somewhere
    increasing in log n for some sets (several steady states possible: the test is not vacuous),
    and with monostable_gamma it is strictly decreasing on a fine grid for every set and input."""
    beta, kappa, ell, gamma = _sets(400, 3, tails=True)
    eff = monostable_gamma(gamma, beta, kappa, ell)
    broken = 0
    for i in range(400):
        for j, e_base, c in ((0.0, 1.0, 1.0), (0.5, 0.7, 1.3), (5.0, 1.0, 0.8)):
            if _max_slope(j, e_base, beta[i], kappa[i], ell[i], gamma[i], c) > 0:
                broken += 1
            assert _max_slope(j, e_base, beta[i], kappa[i], ell[i], eff[i], c) < 0, (i, j)
    assert broken > 100


def test_models_gamma_equals_gamma_away_from_the_bound_and_is_smooth():
    beta, kappa, ell, gamma = _sets(400, 4)
    bound = monostability_bound(beta, kappa, ell)
    eff = monostable_gamma(gamma, beta, kappa, ell)
    far = gamma < bound - 0.15
    assert far.sum() > 200
    assert np.max(np.abs(eff[far] - gamma[far])) < 1e-6
    assert np.all(eff < bound)
    # jax and numpy agree; the gradient is finite and matches central differences
    f = lambda x: monostable_gamma(x[3], x[0], x[1], x[2], jnp)  # noqa: E731
    for i in range(20):
        x = jnp.asarray([beta[i], kappa[i], ell[i], gamma[i]])
        assert abs(float(f(x)) - eff[i]) < 1e-12
        g = np.asarray(jax.grad(f)(x))
        h = 1e-6 * np.maximum(np.abs(np.asarray(x)), 1e-3)
        fd = [(float(f(x.at[k].add(h[k]))) - float(f(x.at[k].add(-h[k])))) / (2 * h[k]) for k in range(4)]
        assert np.all(np.isfinite(g)) and np.allclose(g, fd, rtol=1e-4, atol=1e-6), (i, g, fd)
