"""Sensitivity of the comparison to the observation settings, without refitting.

Each run's posterior draws are importance-reweighted to alternative observation settings
(:data:`SENSITIVITY_GRID`): for draw s, log w_s = sum_units [ll_alt(theta_s) - ll(theta_s)] with
both terms from ``EvidenceModel(hypothesis, the run's evidence, settings).pointwise`` (jitted,
vmapped over the draws). From the reweighted draws, per grid point and hypothesis:

* PSIS-LOO on the primary unit (the study; ``assemble.psis_loo`` with the draws' log weights:
  unit i's LOO ratios are w_s / p_alt(y_i | theta_s)), its Pareto k per unit;
* stacking weights on those LOO densities;
* log ML_alt = log ML + log E_post[exp(ll_alt - ll)] (``assemble.log_mean_ratio``: PSIS-smoothed,
  with its Pareto k), hence Bayes factors from each marginal-likelihood estimator of the run.

A grid point whose reweighting has k > 0.7 for some hypothesis is unreliable: its numbers are
reported but a refit under those settings is needed before they count. The pointwise terms under
the alternative settings are the run's stored terms plus (ll_alt - ll): at the run's own settings
the difference is exactly zero and every number equals the unweighted comparison.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class GridPoint:
    """One alternative of the observation settings: ``overrides`` replace fields of each run's own
    ``ObservationSettings`` (models/observation.py); the rest stays as the run was fitted."""

    name: str
    overrides: dict = field(default_factory=dict)
    note: str = ""


#: The sensitivity grid of every verdict (the one definition; ``compare`` and ``run-all`` use it,
#: comparison.json records it). ``unreliable_prior``: prior probability that a study's findings
#: do not hold (models/claims.py; default 0.05, the eps-equivalents of issue #14);
#: ``unreliable_prior_flagged``: the same for a study with a recorded correction or Matters
#: Arising (default 0.25); ``tau``: tolerance of direction findings on the log scale (default
#: 0.1); ``visit_correlation``: a person's correlation between visits in joint test terms
#: (default 0.5). Reliability points are exact from the stored per-claim terms (no model
#: evaluation); the others re-evaluate the model at the posterior draws.
SENSITIVITY_GRID: tuple[GridPoint, ...] = (
    GridPoint("reliability 0.05", {"unreliable_prior": 0.05}, "the shipped default"),
    GridPoint("reliability 0.02", {"unreliable_prior": 0.02}),
    GridPoint("reliability 0.1", {"unreliable_prior": 0.1}),
    GridPoint("reliability 0.2", {"unreliable_prior": 0.2}),
    GridPoint("no flag", {"unreliable_prior_flagged": 0.05},
              "recorded corrections / Matters Arising ignored (flagged studies as any other)"),
    GridPoint("tau 0.05", {"tau": 0.05}, "sharper direction findings"),
    GridPoint("tau 0.2", {"tau": 0.2}, "more tolerant direction findings"),
)


def check_grid(grid=SENSITIVITY_GRID) -> None:
    """Every override names a field of ObservationSettings (raises ValueError otherwise)."""
    from nadfit.models.observation import ObservationSettings

    known = set(ObservationSettings().to_dict())
    names = [p.name for p in grid]
    if len(set(names)) != len(names):
        raise ValueError("grid point names must be unique")
    for p in grid:
        bad = set(p.overrides) - known
        if bad:
            raise ValueError(f"grid point {p.name!r}: unknown observation settings {sorted(bad)}")


def reweight_run(run, grid=SENSITIVITY_GRID, log=lambda *_: None) -> dict:
    """Differences ll_alt - ll of every log-likelihood variable at each grid point for one run.

    Returns ``{"points": [{"name", "overrides", "note", "settings", "delta": {var: (chain, draw,
    units)}}], "stored_gap": max |ll(current model) - ll(stored)| of the primary variable,
    "wall_time_s"}``. A grid point equal to the run's own settings has delta exactly 0."""
    from nadfit.fitting.comparison.assemble import PRIMARY_VAR, pointwise_loglik
    from nadfit.fitting.inference.pointwise import pointwise_draws, theta_draws
    from nadfit.models.model import EvidenceModel

    t0 = time.time()
    run.require_current_evidence()
    base = run.config.settings()
    model = EvidenceModel(run.hypothesis, run.evidence, base)
    post = run.dt["posterior"]
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    th = theta_draws(post, model)
    ll0 = pointwise_draws(model, th)
    stored = pointwise_loglik(run.dt, PRIMARY_VAR).reshape(chains * draws, -1)
    gap = float(np.nanmax(np.abs(np.where(np.isfinite(stored) & np.isfinite(ll0[PRIMARY_VAR]),
                                          stored - ll0[PRIMARY_VAR], 0.0)))) if stored.shape == ll0[PRIMARY_VAR].shape \
        else math.inf
    from nadfit.models.claims import RELIABILITY_FIELDS

    post_vars = set(post.data_vars)
    points = []
    for p in grid:
        settings = replace(base, **p.overrides)
        if settings == base:
            delta = {var: np.zeros((chains, draws, v.shape[-1])) for var, v in ll0.items()}
        elif set(p.overrides) <= set(RELIABILITY_FIELDS) and "loglik_claim_raw" in post_vars:
            # exact from the stored per-claim terms: only the study mixture's prior changes
            raw = post["loglik_claim_raw"].transpose("chain", "draw", "claim").values.reshape(chains * draws, -1)
            alt = EvidenceModel(run.hypothesis, run.evidence, settings).terms_from_claims(raw)
            now = model.terms_from_claims(raw)
            delta = {var: (alt[var] - now[var]).reshape(chains, draws, -1) for var in ll0 if var in alt}
        else:
            log(f"observation-settings grid: {run.hypothesis} under {p.name}")
            alt = pointwise_draws(EvidenceModel(run.hypothesis, run.evidence, settings), th)
            delta = {var: (alt[var] - ll0[var]).reshape(chains, draws, -1) for var in ll0}
        points.append({"name": p.name, "overrides": dict(p.overrides), "note": p.note,
                       "settings": settings.to_dict(), "delta": delta})
    return {"points": points, "stored_gap": gap, "wall_time_s": time.time() - t0}


def observation_grid(runs: dict, grid=SENSITIVITY_GRID, log=lambda *_: None) -> dict:
    """Reweight every run to every grid point (JAX). Returns per-run deltas and the measured cost."""
    check_grid(grid)
    t0 = time.time()
    per_run = {h: reweight_run(r, grid, log=log) for h, r in runs.items()}
    return {"grid": [{"name": p.name, "overrides": dict(p.overrides), "note": p.note} for p in grid],
            "runs": per_run, "wall_time_s": time.time() - t0}
