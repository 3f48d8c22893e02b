"""models/special.py: the normal CDF and quantile with analytic derivatives agree with jax's own
functions and derivatives, into the far tails the Genz integral reaches (p down to 1e-295; it clips at 1e-300)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import special as jsp

from nadfit.models import special

X = jnp.asarray(np.concatenate([np.linspace(-37.0, 8.0, 181), [-1e-3, 0.0, 1e-3]]))
P = jnp.asarray(np.concatenate([10.0 ** -np.arange(1.0, 300.0, 7.0), np.linspace(0.01, 0.99, 99),
                                1.0 - 10.0 ** -np.arange(1.0, 16.0)]))


def test_values_are_jax_values():
    assert np.array_equal(np.asarray(special.ndtr(X)), np.asarray(jsp.ndtr(X)))
    assert np.array_equal(np.asarray(special.ndtri(P)), np.asarray(jsp.ndtri(P)))


def test_derivatives_match_jax_autodiff():
    for ours, theirs, pts in ((special.ndtr, jsp.ndtr, X), (special.ndtri, jsp.ndtri, P)):
        a = np.asarray(jax.vmap(jax.grad(ours))(pts))
        b = np.asarray(jax.vmap(jax.grad(theirs))(pts))
        assert np.all(np.isfinite(a))
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=0.0)


def test_quantile_derivative_is_reciprocal_of_density():
    z = special.ndtri(P)
    dz = jax.vmap(jax.grad(special.ndtri))(P)
    dp = jax.vmap(jax.grad(special.ndtr))(z)
    np.testing.assert_allclose(np.asarray(dz * dp), 1.0, rtol=1e-9)


def test_reverse_mode_through_a_composition():
    f = lambda x: jnp.sum(jnp.log(special.ndtr(x)) + special.ndtri(0.3 * special.ndtr(x)))  # noqa: E731
    g = lambda x: jnp.sum(jnp.log(jsp.ndtr(x)) + jsp.ndtri(0.3 * jsp.ndtr(x)))  # noqa: E731
    x = jnp.linspace(-5.0, 5.0, 11)
    np.testing.assert_allclose(np.asarray(jax.grad(f)(x)), np.asarray(jax.grad(g)(x)), rtol=1e-9)
