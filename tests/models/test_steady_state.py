"""Steady state: the differentiable JAX solvers agree with scipy's brentq reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from nadfit.models import averaged
from nadfit.models.core import steady_state_jax, steady_state_numpy


def _random_sets(n: int, seed: int = 7):
    rng = np.random.default_rng(seed)
    return dict(
        j=rng.choice([0.0, 1.0], n) * rng.lognormal(-1.0, 1.5, n),
        e_base=rng.lognormal(0.0, 0.5, n),
        beta=rng.lognormal(np.log(66.0), 2.0, n),
        kappa=rng.lognormal(0.0, np.log(3.0), n),
        ell=rng.beta(1.0, 4.0, n),
        gamma=rng.uniform(-0.9, 0.9, n),
        c=rng.lognormal(0.0, 0.5, n),
    )


def test_jax_matches_brentq_on_random_parameter_sets():
    s = _random_sets(300)
    got = np.asarray(jax.jit(steady_state_jax)(*(jnp.asarray(s[k]) for k in s)))
    ref = np.array([steady_state_numpy(*(float(s[k][i]) for k in s)) for i in range(300)])
    rel = np.abs(got / ref - 1.0)
    assert np.all(np.isfinite(got))
    assert rel.max() < 1e-8, rel.max()


def test_baseline_is_exactly_one():
    for beta, kappa, ell, gamma in [(66.0, 1.0, 0.16, 0.0), (0.5, 10.0, 0.9, -0.8), (1e3, 0.1, 0.01, 0.8)]:
        assert abs(steady_state_numpy(0.0, 1.0, beta, kappa, ell, gamma) - 1.0) < 1e-13
        assert abs(float(steady_state_jax(0.0, 1.0, beta, kappa, ell, gamma)) - 1.0) < 1e-13
        u = averaged.steady_state_newton(jnp.asarray(0.0), 0.0, 1.0, beta, kappa, ell)
        assert abs(float(u)) < 1e-15  # n = 1 to rounding


def test_newton_from_warm_start_agrees():
    s = _random_sets(200, seed=3)
    s["gamma"] = np.zeros(200)  # steady_state_newton holds NAMPT fixed (gamma enters through e)
    ref = np.asarray(steady_state_jax(*(jnp.asarray(s[k]) for k in s)))
    u0 = np.log(ref) + np.random.default_rng(1).uniform(-0.1, 0.1, 200)  # warm start
    u = averaged.steady_state_newton(jnp.asarray(u0), jnp.asarray(s["j"]), jnp.asarray(s["e_base"]),
                                 jnp.asarray(s["beta"]), jnp.asarray(s["kappa"]), jnp.asarray(s["ell"]),
                                 jnp.asarray(s["c"]))
    assert np.max(np.abs(np.exp(np.asarray(u)) / ref - 1.0)) < 1e-8


def test_implicit_newton_converges_from_a_cold_start():
    """The implicitly differentiated solve (the production path's daily solves) iterates to
    convergence: from log n = 0 with large fluxes and extreme parameters (ell near 0: n moves by
    e-folds) it reaches brentq's root, and its derivative matches central differences. With a
    fixed three steps the root is off (and the implicit derivative with it)."""
    s = _random_sets(200, seed=11)
    s["gamma"] = np.zeros(200)
    s["j"] = np.random.default_rng(5).lognormal(1.0, 1.5, 200)
    s["ell"] = np.random.default_rng(6).uniform(1e-3, 0.05, 200)
    ref = np.asarray(steady_state_jax(*(jnp.asarray(s[k]) for k in s)))
    args = [jnp.asarray(s[k]) for k in ("j", "e_base", "beta", "kappa", "ell", "c")]

    def solve(j):
        return averaged.steady_state_newton(jnp.zeros(200), j, *args[1:], implicit=True)

    u = np.asarray(jax.jit(solve)(args[0]))
    assert np.max(np.abs(np.exp(u) / ref - 1.0)) < 1e-8
    grad = np.asarray(jax.jit(jax.grad(lambda j: jnp.sum(solve(j))))(args[0]))
    h = 1e-6 * np.asarray(args[0])
    fd = (np.asarray(solve(args[0] + h)) - np.asarray(solve(args[0] - h))) / (2 * h)
    assert np.max(np.abs(grad - fd) / (np.abs(fd) + 1e-8)) < 1e-5
