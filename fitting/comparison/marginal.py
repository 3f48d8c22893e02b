"""Marginal likelihoods (for Bayes factors) and log-prior densities (for power-scaling checks).

Two independent estimators, so that a disagreement can be seen rather than hidden:

* **SMC** — ``pm.sample_smc`` run several times with different seeds; each run's estimate is the
  sum of the stage-wise log normalising constants (PyMC stores it per chain in
  ``sample_stats.log_marginal_likelihood``); the spread across runs is the Monte-Carlo error.
* **Bridge sampling** (Meng & Wong 1996; Gronau et al. 2017) on the NUTS draws, with a
  multivariate-normal proposal fitted in the unconstrained space on half of the draws and the
  iterative estimator on the other half; repeated over random splits for its Monte-Carlo error.
"""

from __future__ import annotations

import math

import numpy as np

from nadfit.models.model import EvidenceModel
from nadfit.models.priors import registry


def _forward(name: str, x: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """Constrained -> unconstrained value for a registry prior (PyMC's default transforms).

    Returns the value variable's name, the unconstrained value and log|d x / d u|.
    """
    p = registry()[name]
    if p.family in ("lognormal", "halfnormal", "gamma"):
        u = np.log(x)
        return f"{name}_log__", u, u
    if p.family == "beta":
        u = np.log(x) - np.log1p(-x)
        return f"{name}_logodds__", u, np.log(x) + np.log1p(-x)
    if p.family in ("uniform", "truncnormal"):
        lo, hi = p.args["lower"], p.args["upper"]
        u = np.log(x - lo) - np.log(hi - x)
        return f"{name}_interval__", u, np.log(x - lo) + np.log(hi - x) - np.log(hi - lo)
    if p.family == "normal":
        return name, x, np.zeros_like(x)
    raise ValueError(p.family)


def unconstrained_draws(model: EvidenceModel, post) -> tuple[dict, int]:
    """Flattened (sample, ...) unconstrained draws keyed by PyMC value-variable names."""
    out = {}
    for name in model.scalar_parameters:
        x = post[name].stack(s=("chain", "draw")).values
        vname, u, _ = _forward(name, x)
        out[vname] = u
    for name in model.vector_parameters:
        out[name] = post[name].stack(s=("chain", "draw")).transpose("s", ...).values
    n = next(iter(out.values())).shape[0]
    return out, n


def _flatten(d: dict, names: list[str]) -> np.ndarray:
    cols = [d[k].reshape(d[k].shape[0], -1) for k in names]
    return np.concatenate(cols, axis=1)


def batched_logp(pm_model, shapes: dict[str, tuple]):
    """``rows (m, dim) -> log posterior density (m,)`` (unconstrained space, Jacobian included)
    for flattened value-variable rows, vectorised over rows with ``jax.vmap``.

    The model's log density is translated to JAX by PyMC (``get_jaxified_logp``), so one call
    evaluates a whole batch instead of one Python round trip per row (13.6 s -> 5.6 s for the
    bridge estimate of one hypothesis on 4000 draws).
    """
    import jax
    import jax.numpy as jnp
    from pymc.sampling.jax import get_jaxified_logp

    names = [v.name for v in pm_model.value_vars]
    neg_logp = get_jaxified_logp(pm_model, negative_logp=False)  # with False it returns -log p
    sizes = [int(np.prod(shapes[k])) if shapes[k] else 1 for k in names]
    offsets = np.cumsum([0, *sizes])

    def one(row):
        return -neg_logp([row[offsets[i]:offsets[i + 1]].reshape(shapes[k]) for i, k in enumerate(names)])

    batch = jax.jit(jax.vmap(one))

    def logpost(rows, chunk: int = 1024):
        rows = np.asarray(rows, dtype=float)
        out = [np.asarray(batch(jnp.asarray(rows[i:i + chunk]))) for i in range(0, len(rows), chunk)]
        return np.concatenate(out) if out else np.zeros(0)

    return logpost


def bridge_log_ml(pm_model, model: EvidenceModel, post, repeats: int = 4, seed: int = 0) -> dict:
    """Bridge-sampling estimate of log p(evidence | hypothesis) from an EvidenceModel's draws."""
    draws, _ = unconstrained_draws(model, post)
    return bridge_log_ml_from_draws(pm_model, draws, repeats=repeats, seed=seed)


def bridge_log_ml_from_draws(pm_model, draws: dict, repeats: int = 4, seed: int = 0) -> dict:
    """Bridge sampling for any PyMC model given posterior draws keyed by value-variable name
    (unconstrained space, leading dimension = sample)."""
    value_names = [v.name for v in pm_model.value_vars]
    shapes = {k: tuple(np.asarray(draws[k]).shape[1:]) for k in value_names}
    flat = _flatten({k: np.asarray(draws[k]) for k in value_names}, value_names)
    n, dim = flat.shape
    logpost = batched_logp(pm_model, shapes)

    if n // 2 <= dim + 1:  # the proposal's covariance needs more draws than dimensions
        return {"log_ml": float("nan"), "mc_se": float("nan"), "runs": [], "n_draws": int(n),
                "method": "bridge (MVN proposal, iterative)",
                "note": f"not computed: {n} posterior draws are too few for {dim} dimensions"}
    from scipy.special import logsumexp

    def log_mean_exp(x):
        return float(logsumexp(x) - math.log(len(x)))

    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(repeats):
        perm = rng.permutation(n)
        fit, use = flat[perm[: n // 2]], flat[perm[n // 2:]]
        mean = fit.mean(0)
        cov = np.atleast_2d(np.cov(fit, rowvar=False)) + 1e-9 * np.eye(dim)
        chol = np.linalg.cholesky(cov)
        logdet = 2 * np.sum(np.log(np.diag(chol)))

        def log_g(x):
            z = np.linalg.solve(chol, (x - mean).T)
            return -0.5 * np.sum(z ** 2, 0) - 0.5 * logdet - 0.5 * dim * math.log(2 * math.pi)

        n1 = n2 = len(use)
        prop = mean + (chol @ rng.standard_normal((dim, n2))).T
        l1 = logpost(use) - log_g(use)
        l2 = logpost(prop) - log_g(prop)
        l2 = np.where(np.isfinite(l2), l2, -np.inf)
        log_s1, log_s2 = math.log(n1 / (n1 + n2)), math.log(n2 / (n1 + n2))
        lstar = np.median(l1)
        a1, a2 = l1 - lstar, l2 - lstar
        log_r = 0.0
        for _ in range(1000):  # Meng & Wong's iteration, in log space (no overflow for wide weights)
            log_num = log_mean_exp(a2 - np.logaddexp(log_s1 + a2, log_s2 + log_r))
            log_den = log_mean_exp(-np.logaddexp(log_s1 + a1, log_s2 + log_r))
            new = log_num - log_den
            done = abs(new - log_r) < 1e-10
            log_r = new
            if done:
                break
        estimates.append(log_r + lstar)
    est = np.array(estimates)
    return {"log_ml": float(est.mean()),
            "mc_se": float(est.std(ddof=1) / math.sqrt(len(est))) if len(est) > 1 else float("nan"),
            "runs": [float(x) for x in est], "n_draws": int(n), "method": "bridge (MVN proposal, iterative)"}


def smc_log_ml(pm_model, runs: int = 3, draws: int = 1000, seed: int = 0) -> dict:
    """Independent SMC runs; estimate = mean of per-run log marginal likelihoods."""
    import pymc as pm

    vals = []
    for i in range(runs):
        with pm_model:
            dt = pm.sample_smc(draws=draws, chains=1, random_seed=seed + 1000 * i, progressbar=False,
                               compile_kwargs={"mode": "JAX"},
                               # one chain per run is the design (the spread over independent runs
                               # is the Monte Carlo error); PyMC's R-hat checks need >= 2 chains
                               compute_convergence_checks=False)
        lml = np.asarray(dt["sample_stats"]["log_marginal_likelihood"].values, dtype=float).ravel()
        lml = lml[np.isfinite(lml)]
        vals.append(float(lml[-1]) if lml.size else float("nan"))
    arr = np.array(vals)
    return {"log_ml_runs": [float(v) for v in arr], "log_ml_mean": float(np.nanmean(arr)),
            "log_ml_mc_se": float(np.nanstd(arr, ddof=1) / math.sqrt(np.sum(np.isfinite(arr)))) if len(arr) > 1 else float("nan"),
            "draws": draws, "method": "pm.sample_smc, independent runs"}


def log_prior_draws(model: EvidenceModel, post):
    """Per-draw log prior density of every parameter (constrained space), for psense."""
    import xarray as xr

    out = {}
    for name, prior in model.priors().items():
        out[name] = xr.DataArray(prior.scipy().logpdf(post[name].values), dims=("chain", "draw"))
    for name in model.vector_parameters:
        v = post[name]
        out[name] = xr.DataArray((-0.5 * v.values ** 2 - 0.5 * math.log(2 * math.pi)).sum(-1), dims=("chain", "draw"))
    return xr.Dataset(out)
