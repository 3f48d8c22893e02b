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

The integral is a trapezoid rule on equally spaced points of [-``GRID_HALF_WIDTH``,
``GRID_HALF_WIDTH``] (:class:`Grid`; spacing ``SPACING_PER_TAU`` x the findings' tolerance tau,
131 points at tau 0.1) with the N(0, 1) weights renormalised to sum to 1. Checked against
adaptive quadrature in tests/models/test_latent.py. The draw treats each grid point's mass as
uniform over its cell, i.e. inverts the piecewise-linear CDF.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

GRID_HALF_WIDTH = 6.5
#: grid spacing in z per unit of the findings' tolerance tau (models/settings.py): a finding is a
#: smooth step Phi((d - c) / tau) in a log ratio d, and |dd/dz| <= W73_LOGIT_SD (1.6) for the CD73
#: share, so a step is at least tau / 1.6 wide in z. Measured (models/VERIFICATION.md, "Session
#: 16"): spacing 0.108 at tau 0.1 (121 points) is within 4e-7 nats of a 2601-point grid at the
#: via-nr and mixed posteriors and 500 prior draws; at tau 0.05 the same spacing errs by 1.8e-3.
SPACING_PER_TAU = 1.0


@dataclass(frozen=True)
class Grid:
    """Equally spaced points of [-GRID_HALF_WIDTH, GRID_HALF_WIDTH] with N(0, 1) trapezoid
    weights renormalised to sum to 1 (the prior mass beyond 6.5 is 8e-11)."""

    z: np.ndarray
    log_w: np.ndarray

    @classmethod
    def for_tolerance(cls, tau: float) -> "Grid":
        points = 2 * math.ceil(GRID_HALF_WIDTH / (SPACING_PER_TAU * tau)) + 1
        z = np.linspace(-GRID_HALF_WIDTH, GRID_HALF_WIDTH, points)
        logw = -0.5 * z ** 2
        return cls(z, logw - float(np.logaddexp.reduce(logw)))

    @property
    def spacing(self) -> float:
        return float(self.z[1] - self.z[0])

    @property
    def prior_weights(self) -> np.ndarray:
        return np.exp(self.log_w)

    def integrate(self, ll_grid):
        """log integral exp(ll(z)) phi(z) dz from ``ll`` on the grid (last axis)."""
        return jax.scipy.special.logsumexp(ll_grid + self.log_w, axis=-1)

    def conditional_weights(self, ll_grid, log_p_reliable=0.0):
        """Grid masses of p(z | theta, y): the claim's posterior when its study holds, the prior
        when it does not, mixed by the probability ``exp(log_p_reliable)`` that it holds."""
        post = jax.nn.softmax(ll_grid + self.log_w, axis=-1)
        r = jnp.exp(log_p_reliable)
        return r * post + (1.0 - r) * self.prior_weights

    def draw(self, weights, u):
        """One z per row of ``weights`` (..., points) from uniforms ``u`` (...): each grid
        point's mass spread evenly over its cell."""
        w = weights / jnp.sum(weights, axis=-1, keepdims=True)
        cdf = jnp.cumsum(w, axis=-1)
        k = jnp.clip(jnp.sum(cdf < u[..., None], axis=-1), 0, len(self.z) - 1)
        mass = jnp.take_along_axis(w, k[..., None], axis=-1)[..., 0]
        below = jnp.take_along_axis(cdf, k[..., None], axis=-1)[..., 0] - mass
        frac = jnp.clip((u - below) / jnp.maximum(mass, 1e-300), 0.0, 1.0)
        return jnp.asarray(self.z)[k] + (frac - 0.5) * self.spacing


def expectation(weights, values):
    """Sum of ``values`` over the grid (last axis) under the masses ``weights``."""
    return jnp.sum(weights * values, axis=-1)


def log_expectation(weights, log_values):
    """log of the expectation of exp(``log_values``) under ``weights`` (a probability's mean)."""
    return jax.scipy.special.logsumexp(log_values, b=weights, axis=-1)
