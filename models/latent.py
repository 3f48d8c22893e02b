"""Standard-normal latents integrated out of the log density on a fixed grid, and drawn back.

A latent element ``z ~ N(0, 1)`` that enters the likelihood through one claim only (the CD73
share of one cell system, ``z_w73``: models/model.py) need not be sampled. Its claim's term
given the other parameters ``theta`` is the prior expectation

    log p(claim | theta) = log integral p(claim | theta, z) phi(z) dz,

and because no other term depends on ``z`` the study's reliability mixture (models/claims.py)
stays exact: ``(1 - rho) p(claim | theta) prod(others) + rho 2^-n`` is the z-integral of the
mixture. The sampler then moves only ``theta``; the posterior of ``z`` given ``theta`` and the
data is recovered after sampling, one draw of ``z`` per posterior draw of ``theta``, from

    p(z | theta, y) = r * p(claim | theta, z) phi(z) / p(claim | theta) + (1 - r) phi(z),

with ``r`` the posterior probability that the study's findings hold (1 for a claim outside the
mixture). The pairs (theta, z) are draws from the joint posterior: the same target as sampling
``z``, without the sampler seeing the near-step that a sharp finding makes in ``z``.

The integral is a trapezoid rule on ``GRID_POINTS`` equally spaced points of
[-``GRID_HALF_WIDTH``, ``GRID_HALF_WIDTH``] with the N(0, 1) weights renormalised to sum to 1
(the prior mass beyond 6.5 is 8e-11). Checked against adaptive quadrature in
tests/models/test_latent.py. The draw treats each grid point's mass as uniform over its cell
(spacing 0.025), i.e. inverts the piecewise-linear CDF.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

GRID_HALF_WIDTH = 6.5
GRID_POINTS = 521
Z = np.linspace(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, GRID_POINTS)
SPACING = float(Z[1] - Z[0])
_logw = -0.5 * Z ** 2 - 0.5 * math.log(2.0 * math.pi) + math.log(SPACING)
LOG_W = _logw - float(np.logaddexp.reduce(_logw))  # trapezoid weights (tails negligible), sum 1
PRIOR_WEIGHTS = np.exp(LOG_W)


def integrate(ll_grid):
    """log integral exp(ll(z)) phi(z) dz from ``ll`` on the grid (last axis)."""
    return jax.scipy.special.logsumexp(ll_grid + LOG_W, axis=-1)


def conditional_weights(ll_grid, log_p_reliable=0.0):
    """Grid masses of p(z | theta, y): the claim's posterior when its study holds, the prior when
    it does not, mixed by the probability ``exp(log_p_reliable)`` that it holds."""
    post = jax.nn.softmax(ll_grid + LOG_W, axis=-1)
    r = jnp.exp(log_p_reliable)
    return r * post + (1.0 - r) * PRIOR_WEIGHTS


def expectation(weights, values):
    """Sum of ``values`` over the grid (last axis) under the masses ``weights``."""
    return jnp.sum(weights * values, axis=-1)


def log_expectation(weights, log_values):
    """log of the expectation of exp(``log_values``) under ``weights`` (a probability's mean)."""
    return jax.scipy.special.logsumexp(log_values, b=weights, axis=-1)


def draw(weights, u):
    """One z per row of ``weights`` (..., GRID_POINTS) from uniforms ``u`` (...): each grid
    point's mass spread evenly over its cell."""
    w = weights / jnp.sum(weights, axis=-1, keepdims=True)
    cdf = jnp.cumsum(w, axis=-1)
    k = jnp.clip(jnp.sum(cdf < u[..., None], axis=-1), 0, GRID_POINTS - 1)
    below = jnp.take_along_axis(cdf, k[..., None], axis=-1)[..., 0] - jnp.take_along_axis(w, k[..., None], axis=-1)[..., 0]
    mass = jnp.take_along_axis(w, k[..., None], axis=-1)[..., 0]
    frac = jnp.clip((u - below) / jnp.maximum(mass, 1e-300), 0.0, 1.0)
    return jnp.asarray(Z)[k] + (frac - 0.5) * SPACING
