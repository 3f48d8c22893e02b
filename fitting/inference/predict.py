"""``nadfit predict``: posterior predictions of blood NAD+ for a new oral NMN/NR regimen.

For up to ``MAX_DRAWS`` (400) evenly thinned posterior draws of a run folder, the model's
whole-blood pool trajectory ``b(t)`` is simulated for ``dose_mg`` per day split into
``doses_per_day`` doses (``EvidenceModel.blood_curve``), read at ``day`` (log-linear
interpolation between whole days) and mapped to the requested matrix with the matrix elasticity:
fold = b ** lambda (lambda = 1 for whole blood, the posterior ``lambda_serum`` or
``lambda_blood_unspecified`` otherwise).

Two predictions are reported:

* ``fold_change_mean_effect`` — the population mean effect: ``exp(lambda * log b)``;
* ``fold_change`` — what a *new study* would observe as its arm mean: the log effect is scaled by
  a new study effect ``exp(sigma_het * z1)`` and shifted by a new visit drift ``sigma_drift * z2``,
  z1, z2 ~ N(0, 1) drawn once per posterior draw (seeded with the run's seed, so repeatable).

JSON output (``--json``)::

    {
      "compound": "NMN",              # NMN | NR
      "dose_mg": 300.0,               # mg per day
      "doses_per_day": 1,
      "day": 60.0,                    # day of continuous daily dosing (0 < day <= 365)
      "matrix": "whole_blood",        # whole_blood | serum | blood_unspecified
      "hypothesis": "via-nr",         # of the run
      "n_draws": 400,                 # posterior draws used (thinned, <= 400)
      "fold_change": {"median": ..., "q05": ..., "q25": ..., "q75": ..., "q95": ...},
      "fold_change_mean_effect": {"median": ..., "q05": ..., "q25": ..., "q75": ..., "q95": ...},
      "without_non_human_evidence": {     # the human evidence alone (reports.human_only): the same
        "non_human_studies": [...],       # draws importance-reweighted to remove these studies
        "pareto_k": 1.1, "reliable": false,   # k <= 0.7 for numbers; else refit with --exclude
        "fold_change_mean_effect": {...} or null
      }
    }

Fold changes are relative to the pre-dosing baseline (1 = no change); quantiles are over the
thinned posterior draws (q05/q95 give a 90 % equal-tailed interval).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nadfit.datasets.errors import UserError
from nadfit.fitting.inference.regimen import validate_regimen

MAX_DRAWS = 400
MATRICES = {"whole_blood": None, "serum": "lambda_serum", "blood_unspecified": "lambda_blood_unspecified"}
QUANTILES = {"median": 0.5, "q05": 0.05, "q25": 0.25, "q75": 0.75, "q95": 0.95}


def validate_options(compound: str, dose_mg, day, doses_per_day, matrix: str) -> tuple[str, float, float, int, str]:
    """Check the regimen options; raise UserError with one line otherwise."""
    comp, dose, k, d = validate_regimen(compound, dose_mg, doses_per_day, day)
    if matrix not in MATRICES:
        raise UserError(f"--matrix must be one of {', '.join(MATRICES)}, got {matrix!r}")
    return comp, dose, d, k, matrix


def _quantiles(x: np.ndarray) -> dict:
    return {k: float(np.quantile(x, q)) for k, q in QUANTILES.items()}


def _thinned(total: int, max_draws: int) -> np.ndarray:
    n = min(max_draws, total)
    return np.unique(np.linspace(0, total - 1, n).round().astype(int))


def posterior_theta(dt, model, max_draws: int = MAX_DRAWS) -> tuple[dict, int]:
    """{name: (n,) or (n, k) array} of evenly thinned posterior draws, as blood_curve expects."""
    post = dt["posterior"]
    names = list(model.scalar_parameters) + [v for v in model.vector_parameters if v in post.data_vars]
    missing = [n for n in model.scalar_parameters if n not in post.data_vars]
    if missing:
        raise UserError(f"run posterior lacks parameters {missing}; it was written by an incompatible model version")
    idx = _thinned(post.sizes["chain"] * post.sizes["draw"], max_draws)
    th = {}
    for name in names:
        v = post[name].stack(sample=("chain", "draw")).transpose("sample", ...).values
        th[name] = np.asarray(v, dtype=float)[idx]
    return th, len(idx)


def blood_at_day(model, th: dict, compound: str, dose_mg: float, day: float, doses_per_day: int) -> np.ndarray:
    """Whole-blood fold change b(day) per draw (vmap over draws)."""
    import jax
    import jax.numpy as jnp

    days = max(int(math.ceil(day)), 1)

    def one(t):
        b, _ = model.blood_curve(t, compound, dose_mg, days, doses_per_day)
        return b

    curves = np.asarray(jax.jit(jax.vmap(one))({k: jnp.asarray(v) for k, v in th.items()}))  # (n, days+1)
    k0 = int(math.floor(day))
    w = day - k0
    log_b = np.log(np.maximum(curves, 1e-12))
    out = log_b[:, k0] if w == 0 else (1 - w) * log_b[:, k0] + w * log_b[:, min(k0 + 1, days)]
    return np.exp(out)


def predict(run, compound: str, dose_mg: float, day: float, doses_per_day: int = 1,
            matrix: str = "whole_blood", max_draws: int = MAX_DRAWS, seed: int | None = None) -> dict:
    """Posterior prediction for a regimen; returns the JSON-ready dict documented above."""
    compound, dose_mg, day, doses_per_day, matrix = validate_options(compound, dose_mg, day, doses_per_day, matrix)
    from nadfit.fitting.inference.runs import load_run

    fitted = load_run(Path(run))
    summary, dt, hypothesis = fitted.summary, fitted.dt, fitted.hypothesis
    model = fitted.model()  # the run's own evidence selection and observation settings
    th, n = posterior_theta(dt, model, max_draws)
    b = blood_at_day(model, th, compound, dose_mg, day, doses_per_day)
    lam_name = MATRICES[matrix]
    lam = th[lam_name] if lam_name else np.ones(n)
    log_mean = lam * np.log(b)
    rng = np.random.default_rng(int(summary.get("seed", 0) if seed is None else seed))
    z1 = rng.standard_normal(n)
    z2 = rng.standard_normal(n)
    log_new = log_mean * np.exp(th["sigma_het"] * z1) + th["sigma_drift"] * z2
    return {**_result(compound, dose_mg, doses_per_day, day, matrix, hypothesis, n, log_new, log_mean),
            "without_non_human_evidence": _human_only(dt, log_mean, max_draws)}


def _human_only(dt, log_mean: np.ndarray, max_draws: int) -> dict | None:
    """The population mean effect from the human evidence alone: the run's draws reweighted to
    remove the non-human studies' likelihood terms (:mod:`nadfit.reports.human_only`)."""
    if "loglik_study" not in dt["posterior"].data_vars or "observed_data" not in dt.children:
        return None
    from nadfit.reports.human_only import (
        K_RELIABLE,
        drop_studies_weights,
        non_human_studies,
        subset_weights,
        weighted_quantiles,
    )

    studies = non_human_studies(dt["observed_data"])
    w, k = drop_studies_weights(dt["posterior"], studies)
    post = dt["posterior"]
    ws = subset_weights(w, _thinned(post.sizes["chain"] * post.sizes["draw"], max_draws))
    reliable = bool(k <= K_RELIABLE)
    q = None
    if reliable:
        v = np.exp(weighted_quantiles(log_mean, ws, list(QUANTILES.values())))
        q = {name: float(x) for name, x in zip(QUANTILES, v)}
    return {"non_human_studies": studies, "pareto_k": float(k) if math.isfinite(k) else None, "reliable": reliable,
            "fold_change_mean_effect": q}


def _result(compound, dose_mg, doses_per_day, day, matrix, hypothesis, n, log_new, log_mean) -> dict:
    return {
        "compound": compound, "dose_mg": dose_mg, "doses_per_day": doses_per_day, "day": day,
        "matrix": matrix, "hypothesis": hypothesis, "n_draws": int(n),
        "fold_change": _quantiles(np.exp(log_new)),
        "fold_change_mean_effect": _quantiles(np.exp(log_mean)),
    }
