"""A validation model whose evidence is known, for testing the marginal-likelihood estimators.

Eight-schools-like normal hierarchy (hierarchical, non-conjugate in ``tau``)::

    mu ~ Normal(0, MU_SD)           tau ~ HalfNormal(TAU_SD)
    theta_j ~ Normal(mu, tau)       y_j ~ Normal(theta_j, sigma_j)       j = 1..J

The free parameters are ``mu``, ``tau`` (log-transformed by PyMC) and ``theta`` (J values), so
the samplers work in J + 2 dimensions, with the funnel between ``tau`` and ``theta`` of the
centred parametrisation. Given ``tau``, ``mu`` and ``theta`` integrate out analytically:
``y ~ N(0, diag(sigma^2 + tau^2) + MU_SD^2 11')``, so the evidence is a one-dimensional
integral over ``tau``, computed by adaptive quadrature (``log_evidence``). Given ``tau`` the
posterior is Gaussian, so exact independent posterior draws are available too
(``exact_posterior_draws``: ``tau`` by inverse CDF on a fine grid, then ``mu`` and ``theta``).

The data are synthetic, one draw from the model itself (``numpy.random.default_rng(20261130)``:
``sigma_j ~ U(0.5, 2)``, ``theta_j = 2 + 1.5 z_j``, ``y_j = theta_j + sigma_j e_j``, rounded to 2 decimals):
10 groups measured precisely enough that the likelihood dominates the prior (the tempering needs several
stages, unlike Rubin's eight schools, whose likelihood is nearly flat), with the centred funnel intact.
"""

from __future__ import annotations

import math

import numpy as np

#: synthetic group estimates and their standard errors (see the module docstring for how they were drawn)
Y = np.array([1.63, 3.06, 6.61, 0.84, 0.06, 2.7, -0.5, -0.49, -0.09, 2.95])
SIGMA = np.array([1.48, 0.98, 1.22, 0.51, 1.15, 1.19, 1.26, 1.52, 1.71, 1.87])
MU_SD = 5.0
TAU_SD = 5.0


def pymc_model(y: np.ndarray = Y, sigma: np.ndarray = SIGMA):
    """The PyMC model in the same form as nadfit's production models: free RVs with priors and the
    likelihood as one ``pm.Potential("evidence", ...)``."""
    import pymc as pm

    with pm.Model() as m:
        mu = pm.Normal("mu", 0.0, MU_SD)
        tau = pm.HalfNormal("tau", TAU_SD)
        theta = pm.Normal("theta", mu, tau, shape=len(y))
        pm.Potential("evidence", pm.logp(pm.Normal.dist(theta, sigma), y).sum())
    return m


def log_marginal_given_tau(tau, y: np.ndarray = Y, sigma: np.ndarray = SIGMA) -> np.ndarray:
    """log N(y; 0, diag(sigma^2 + tau^2) + MU_SD^2 11') for an array of ``tau`` (Sherman-Morrison: the
    determinant and the quadratic form of a diagonal-plus-rank-one covariance in closed form)."""
    tau = np.asarray(tau, dtype=float)
    d = sigma ** 2 + tau[..., None] ** 2
    c = MU_SD ** 2
    w = 1 + c * np.sum(1 / d, -1)
    logdet = np.sum(np.log(d), -1) + np.log(w)
    quad = np.sum(y ** 2 / d, -1) - c * np.sum(y / d, -1) ** 2 / w
    return -0.5 * (quad + logdet + len(y) * math.log(2 * math.pi))


def log_evidence(y: np.ndarray = Y, sigma: np.ndarray = SIGMA) -> float:
    """log p(y) by adaptive quadrature over tau (relative accuracy ~1e-10)."""
    from scipy.integrate import quad
    from scipy.stats import halfnorm

    ref = float(log_marginal_given_tau(0.0, y, sigma))  # scale: integrand / exp(ref) is O(1)

    def f(t):
        return math.exp(float(log_marginal_given_tau(t, y, sigma)) - ref) * halfnorm(scale=TAU_SD).pdf(t)

    val, _ = quad(f, 0.0, np.inf, epsabs=0.0, epsrel=1e-11, limit=500)
    return ref + math.log(val)


def exact_posterior_draws(n: int, seed: int = 0, y: np.ndarray = Y, sigma: np.ndarray = SIGMA) -> dict:
    """``n`` independent posterior draws keyed by PyMC value-variable names (unconstrained space)."""
    from scipy.stats import halfnorm

    rng = np.random.default_rng(seed)
    grid = np.linspace(1e-6, 12 * TAU_SD, 40001)
    logw = log_marginal_given_tau(grid, y, sigma) + halfnorm(scale=TAU_SD).logpdf(grid)
    w = np.exp(logw - logw.max())
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    tau = np.interp(rng.uniform(size=n), cdf, grid)
    # mu | tau, y: Gaussian (prior N(0, MU_SD^2), y_j ~ N(mu, sigma_j^2 + tau^2))
    v = sigma[None, :] ** 2 + tau[:, None] ** 2
    prec = 1 / MU_SD ** 2 + (1 / v).sum(1)
    mu = (y[None, :] / v).sum(1) / prec + rng.standard_normal(n) / np.sqrt(prec)
    # theta_j | mu, tau, y: Gaussian
    pt = 1 / tau[:, None] ** 2 + 1 / sigma[None, :] ** 2
    mean = (mu[:, None] / tau[:, None] ** 2 + y[None, :] / sigma[None, :] ** 2) / pt
    theta = mean + rng.standard_normal((n, len(y))) / np.sqrt(pt)
    return {"mu": mu, "tau_log__": np.log(tau), "theta": theta}
