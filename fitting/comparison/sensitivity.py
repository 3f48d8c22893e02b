"""Power-scaling prior and likelihood sensitivity (Kallioinen et al. 2023) of a fitted run.

The one implementation used by ``nadfit compare`` (``comparison.json``) and by the run report:
both show the same numbers. Importance-weighted (no refit): the prior and the likelihood are
power-scaled by alpha in [0.99, 1.01] and the cumulative Jensen-Shannon distance of each
marginal is reported (``arviz_stats.psense``); a value >= 0.05 flags sensitivity.
"""

from __future__ import annotations

import math

import numpy as np

#: sensitivity above which a parameter is flagged (the arviz_stats default)
PSENSE_THRESHOLD = 0.05
PSENSE_NOTE = ("power-scaling of the prior and of the likelihood by α ∈ [0.99, 1.01] "
               f"(arviz_stats.psense, importance-weighted; threshold {PSENSE_THRESHOLD})")


def diagnosis(prior: float, likelihood: float) -> str:
    if prior >= PSENSE_THRESHOLD and likelihood >= PSENSE_THRESHOLD:
        return "prior-data conflict"
    if prior >= PSENSE_THRESHOLD:
        return "strong prior / weak likelihood"
    return "–"


def power_scaling(run) -> dict:
    """``{"rows": [{"name", "prior", "likelihood", "diagnosis"}] | None, "note": str}`` for a
    :class:`~nadfit.fitting.inference.runs.FittedRun` (scalar parameters with a prior)."""
    if float(run.config.widen_priors) != 1.0:
        return {"rows": None, "note": "not computed: the run used widened priors, whose log density is not recorded"}
    if run.dt is None or "log_likelihood" not in run.dt.children:
        return {"rows": None, "note": "not computed: the run has no log_likelihood group"}
    if run.evidence is None:
        return {"rows": None, "note": f"not computed: {run.evidence_problem}"}
    import arviz_stats as azs
    import xarray as xr

    from nadfit.fitting.comparison.marginal import log_prior_draws

    post = run.dt["posterior"].to_dataset()
    model = run.model()
    names = [n for n in model.scalar_parameters if n in post.data_vars]
    lp = log_prior_draws(model, post)
    total = sum(lp[v].values for v in lp.data_vars)
    work = xr.DataTree.from_dict({
        "posterior": post[names],
        "log_likelihood": run.dt["log_likelihood"].to_dataset(),
        "log_prior": xr.Dataset({"prior": (("chain", "draw"), np.asarray(total))},
                                coords={"chain": post["chain"], "draw": post["draw"]}),
    })
    pri = azs.psense(work, var_names=names, group="prior")
    lik = azs.psense(work, var_names=names, group="likelihood")
    rows = []
    for v in names:
        a, b = float(pri[v].values), float(lik[v].values)
        rows.append({"name": v, "prior": a if math.isfinite(a) else None,
                     "likelihood": b if math.isfinite(b) else None, "diagnosis": diagnosis(a, b)})
    return {"rows": rows, "note": PSENSE_NOTE}


def flagged(psense: dict[str, dict]) -> list[str]:
    """``"param (hypothesis)"`` for every flagged parameter of every run."""
    return sorted(f"{r['name']} ({h})" for h, res in psense.items() for r in (res.get("rows") or [])
                  if r["diagnosis"] != "–")
