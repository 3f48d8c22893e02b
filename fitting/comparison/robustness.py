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

from nadfit.reports.conventions import PARETO_K_BAD


@dataclass(frozen=True)
class GridPoint:
    """One alternative of the observation settings: ``overrides`` replace fields of each run's own
    ``ObservationSettings`` (models/observation.py); the rest stays as the run was fitted."""

    name: str
    overrides: dict = field(default_factory=dict)
    note: str = ""


#: The sensitivity grid of every verdict (the one definition; ``compare`` and ``run-all`` use it,
#: comparison.json records it). ``eps``: probability that a reported finding is wrong (the floor
#: of every qualitative term, default 0.02); ``tau``: tolerance of direction findings on the log
#: scale (default 0.1). The eps values are the eps-equivalents named in issue #14; when the
#: study-reliability prior replaces eps, its fields replace these overrides here.
SENSITIVITY_GRID: tuple[GridPoint, ...] = (
    GridPoint("eps 0.02", {"eps": 0.02}, "the shipped default"),
    GridPoint("eps 0.05", {"eps": 0.05}),
    GridPoint("eps 0.1", {"eps": 0.1}),
    GridPoint("eps 0.2", {"eps": 0.2}),
    GridPoint("tau 0.05", {"tau": 0.05}, "sharper direction findings"),
    GridPoint("tau 0.2", {"tau": 0.2}, "more tolerant direction findings"),
)
#: draws per jitted batch (bounded memory; the last batch is padded to keep one compiled shape)
BATCH = 500


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


def theta_draws(post, model) -> dict:
    """Posterior draws as the model's parameter dict, draws flattened: name -> (S, ...) array."""
    names = list(model.scalar_parameters) + list(model.vector_parameters)
    out = {}
    for k in names:
        v = post[k].transpose("chain", "draw", ...).values
        out[k] = v.reshape(-1, *v.shape[2:])
    return out


def pointwise_draws(model, th: dict, batch: int = BATCH) -> dict[str, np.ndarray]:
    """``model.pointwise`` at every draw: variable -> (S, units), jitted and vmapped in batches."""
    import jax
    import jax.numpy as jnp

    fn = jax.jit(jax.vmap(model.pointwise))
    s = len(next(iter(th.values())))
    size = min(batch, s)
    parts: dict[str, list] = {}
    for start in range(0, s, size):
        idx = np.minimum(np.arange(start, start + size), s - 1)
        res = fn({k: jnp.asarray(v[idx]) for k, v in th.items()})
        keep = min(size, s - start)
        for var, arr in res.items():
            parts.setdefault(var, []).append(np.asarray(arr)[:keep])
    return {var: np.concatenate(p, axis=0) for var, p in parts.items()}


def reweight_run(run, grid=SENSITIVITY_GRID, log=lambda *_: None) -> dict:
    """Differences ll_alt - ll of every log-likelihood variable at each grid point for one run.

    Returns ``{"points": [{"name", "overrides", "note", "settings", "delta": {var: (chain, draw,
    units)}}], "stored_gap": max |ll(current model) - ll(stored)| of the primary variable,
    "wall_time_s"}``. A grid point equal to the run's own settings has delta exactly 0."""
    from nadfit.fitting.comparison.assemble import PRIMARY_VAR, pointwise_loglik
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
    points = []
    for p in grid:
        settings = replace(base, **p.overrides)
        if settings == base:
            delta = {var: np.zeros((chains, draws, v.shape[-1])) for var, v in ll0.items()}
        else:
            log(f"observation-settings grid: {run.hypothesis} under {p.name}")
            alt = pointwise_draws(EvidenceModel(run.hypothesis, run.evidence, settings), th)
            delta = {var: (alt[var] - ll0[var]).reshape(chains, draws, -1) for var in ll0}
        points.append({"name": p.name, "overrides": dict(p.overrides), "note": p.note,
                       "settings": settings.to_dict(), "delta": delta})
    return {"points": points, "stored_gap": gap, "wall_time_s": time.time() - t0}


def _log_weights(delta: np.ndarray) -> np.ndarray:
    """(chain, draw) log importance weights from (chain, draw, unit) differences of the primary terms."""
    lw = delta.sum(-1)
    return np.where(np.isfinite(lw), lw, -np.inf)


def grid_summary(primary: dict[str, np.ndarray], deltas: dict[str, list[np.ndarray]], names: list[str],
                 groups: list[str] | None = None, smc: dict | None = None, bridge: dict | None = None) -> dict:
    """The comparison at every grid point, from arrays (no model needed; tested on synthetic ones).

    ``primary[h]``: the run's stored (chain, draw, unit) terms of the primary unit (studies);
    ``deltas[h][j]``: (chain, draw, unit) ll_alt - ll at grid point j, same units; ``names``: the
    grid point names; ``groups``: when the units are rows, their study (summed per study here).
    ``smc``/``bridge``: the comparison's marginal likelihoods at the run's own settings."""
    from nadfit.fitting.comparison.assemble import _r, group_units, log_mean_ratio, psis_loo, stacking_weights

    hyps = list(primary)
    points = []
    for j, name in enumerate(names):
        res, ml = {}, {}
        for h in hyps:
            d = deltas[h][j]
            lw = _log_weights(d)
            ll = primary[h] + d
            if groups is not None:
                _, ll = group_units(ll, groups)
            res[h] = psis_loo(ll, log_weights=lw)
            ml[h] = log_mean_ratio(lw)
        order = sorted(hyps, key=lambda h: -res[h]["elpd"])
        best = order[0]
        w = stacking_weights({h: res[h]["elpd_i"] for h in hyps}, {})
        ranking = []
        for h in order:
            diff = res[best]["elpd_i"] - res[h]["elpd_i"]
            ranking.append({"hypothesis": h, "elpd": _r(res[h]["elpd"]), "se": _r(res[h]["se"]),
                            "elpd_diff": _r(diff.sum()), "dse": _r(math.sqrt(len(diff) * np.var(diff))),
                            "weight": _r(w[h]), "n_bad_k": int(np.sum(res[h]["k"] > PARETO_K_BAD)),
                            "n_raw_is": int(res[h]["not_estimable"].sum())})
        pairs = []  # every pair, so that differences to any reference hypothesis can be shown
        for i, h1 in enumerate(hyps):
            for h2 in hyps[i + 1:]:
                diff = res[h1]["elpd_i"] - res[h2]["elpd_i"]
                pairs.append({"h1": h1, "h2": h2, "elpd_diff": _r(diff.sum()),
                              "dse": _r(math.sqrt(len(diff) * np.var(diff)))})
        bfs = []
        for i, h1 in enumerate(hyps):
            for h2 in hyps[i + 1:]:
                shift = ml[h1]["log_mean"] - ml[h2]["log_mean"]
                entry = {"h1": h1, "h2": h2, "log_bf_shift": _r(shift)}
                if smc and h1 in smc and h2 in smc:
                    entry["smc_log_bf"] = _r(smc[h1]["log_ml_mean"] - smc[h2]["log_ml_mean"] + shift)
                if bridge and h1 in bridge and h2 in bridge:
                    entry["bridge_log_bf"] = _r(bridge[h1]["log_ml"] - bridge[h2]["log_ml"] + shift)
                bfs.append(entry)
        unreliable = [h for h in hyps if not ml[h]["k"] <= PARETO_K_BAD]
        points.append({
            "name": name, "ranking": ranking, "order": order,
            "reweighting": {h: {"log_ml_shift": _r(ml[h]["log_mean"]), "pareto_k": _r(ml[h]["k"], 3),
                                "ess": _r(ml[h]["ess"], 4), "method": ml[h]["method"],
                                "reliable": ml[h]["k"] <= PARETO_K_BAD} for h in hyps},
            "pairs": pairs, "bayes_factors": bfs, "reliable": not unreliable, "refit_needed": unreliable,
        })
    return {"points": points}


def robustness_of(grid: dict, default_order: list[str]) -> dict:
    """Does the ranking hold across the grid? Compares each point's ELPD order with the default's.

    Returns ``ranking_holds`` (same order at every reliable point), ``leader_holds`` (same first
    hypothesis), ``flips`` (reliable points with another order), ``unreliable`` (points whose
    reweighting has k > 0.7 for some hypothesis: refit needed; their order is not counted)."""
    flips, unreliable = [], []
    for p in grid["points"]:
        if not p["reliable"]:
            unreliable.append({"name": p["name"], "refit_needed": p["refit_needed"], "order": p["order"]})
            continue
        if p["order"] != list(default_order):
            flips.append({"name": p["name"], "order": p["order"]})
    reliable = [p for p in grid["points"] if p["reliable"]]
    return {"ranking_holds": not flips, "leader_holds": all(f["order"][0] == default_order[0] for f in flips),
            "n_points": len(grid["points"]), "n_reliable": len(reliable), "flips": flips, "unreliable": unreliable}


def observation_grid(runs: dict, grid=SENSITIVITY_GRID, log=lambda *_: None) -> dict:
    """Reweight every run to every grid point (JAX). Returns per-run deltas and the measured cost."""
    check_grid(grid)
    t0 = time.time()
    per_run = {h: reweight_run(r, grid, log=log) for h, r in runs.items()}
    return {"grid": [{"name": p.name, "overrides": dict(p.overrides), "note": p.note} for p in grid],
            "runs": per_run, "wall_time_s": time.time() - t0}
