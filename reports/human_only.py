"""What the human prediction would be from the human evidence alone (#15 item 4).

The posterior of a fit uses every study: human trials, rodent tissues and cell cultures. The
human prediction *without* the non-human evidence is the posterior of the same model with the
non-human studies' likelihood terms removed. It is estimated from the fitted draws by
Pareto-smoothed importance sampling (Vehtari et al. 2024, JMLR 25:72): each draw s gets the log
ratio −Σ_{non-human studies} loglik_study[s] (the same leave-group-out weights as
leave-one-study-out PSIS-LOO, for a group of studies), smoothed by ArviZ's ``psislw``. The
Pareto k of the weights says whether the estimate can be trusted: above ``K_RELIABLE`` (0.7)
the human-only posterior is too far from the full one and a refit is needed
(``nadfit fit --exclude <the listed studies>``); the report and ``nadfit predict`` say so instead
of showing numbers.

A study is *human* when every one of its scored rows observes a human quantity
(:func:`nadfit.models.model.is_human_observable`): the in-vivo human trials. Human cell lines are
cell systems, not human evidence, in this sense.
"""

from __future__ import annotations

import warnings

import numpy as np

from nadfit.models.systems import is_human_observable
from nadfit.reports.conventions import PARETO_K_BAD as K_RELIABLE  # the one Pareto-k threshold

SAMPLE_DIMS = ("chain", "draw")


def non_human_studies(observed_data) -> list[str]:
    """Studies of a run (its ``observed_data`` group) with at least one non-human scored row,
    in the run's order."""
    studies = [str(s) for s in np.asarray(observed_data["study_id"].values)]
    observables = [str(o) for o in np.asarray(observed_data["observable"].values)]
    out: dict[str, bool] = {}
    for s, o in zip(studies, observables):
        out[s] = out.get(s, False) or not is_human_observable(o)
    return [s for s, nonhuman in out.items() if nonhuman]


def drop_studies_weights(posterior, studies: list[str]) -> tuple[np.ndarray, float]:
    """Normalised PSIS weights over the stacked (chain, draw) samples (chain-major, as
    ``stack(sample=("chain", "draw"))``) that remove ``studies``' likelihood terms, and their
    Pareto k. No studies: equal weights and k = 0; too few draws for a Pareto tail: equal weights
    and k = NaN (never reliable)."""
    ll = posterior["loglik_study"]
    n = ll.sizes["chain"] * ll.sizes["draw"]
    if not studies:
        return np.full(n, 1.0 / n), 0.0
    import arviz_stats  # noqa: F401  (registers the .azstats accessor)

    dropped = ll.sel(study=list(studies)).sum("study").transpose(*SAMPLE_DIMS)
    # ArviZ smooths exp(-x): x = the dropped log-likelihood gives ratios exp(-loglik)
    with warnings.catch_warnings():
        # k is returned and reported by the callers; a run too short for a Pareto tail (fewer
        # than 5 tail draws) cannot be reweighted: k is then NaN (unreliable)
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto distribution")
        warnings.filterwarnings("ignore", message="Number of tail draws cannot be less than 5")
        try:
            lw, k = dropped.azstats.psislw(r_eff=1.0, dim=list(SAMPLE_DIMS))
        except ValueError:
            return np.full(n, 1.0 / n), float("nan")
    lw = np.asarray(lw.transpose(*SAMPLE_DIMS).values, dtype=float).reshape(-1)
    w = np.exp(lw - lw.max())
    return w / w.sum(), float(np.asarray(k))


def weighted_quantiles(x, w, qs) -> np.ndarray:
    """Quantiles ``qs`` of the sample ``x`` with weights ``w`` (inverse of the weighted ECDF,
    interpolated at the mid-points of the weights)."""
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    order = np.argsort(x)
    x, w = x[order], w[order] / w.sum()
    cdf = np.cumsum(w) - 0.5 * w
    return np.interp(np.asarray(qs, dtype=float), cdf, x)


def subset_weights(weights: np.ndarray, idx) -> np.ndarray:
    """The weights of a thinned subset of the samples (``idx`` into the stacked samples),
    renormalised."""
    w = np.asarray(weights, dtype=float)[np.asarray(idx, dtype=int)]
    return w / w.sum()


def effective_sample_size(w) -> float:
    """Kish's effective sample size of normalised weights."""
    w = np.asarray(w, dtype=float)
    return float(1.0 / np.sum((w / w.sum()) ** 2))


#: scenarios of the comparison table (oral NMN, whole blood, population mean effect): Yi 2022's
#: arms at day 60 and the addendum's 30-day trial arms (``models.scenarios``)
SHIFT_SCENARIOS = ("yi_nmn300", "yi_nmn600", "yi_nmn900", "x30_nmn500", "x30_nmn1000")


def _shift_regimens() -> tuple:
    """(mg/day, last day) of each :data:`SHIFT_SCENARIOS` regimen (one segment of daily NMN)."""
    from nadfit.models.scenarios import fixed_scenarios

    scenarios = fixed_scenarios()
    out = []
    for name in SHIFT_SCENARIOS:
        reg = scenarios[name]
        (seg,) = reg.segments
        assert reg.compound == "NMN" and seg.start == 0.0, name
        out.append((seg.mg_per_day, int(seg.end)))
    return tuple(out)


#: (dose in mg/day, day) of the table's rows; a dose a run's predictions group does not hold (runs
#: fitted before 1000 mg/day joined ``fit.CURVE_DOSES_MG``) is left out of the table
SHIFT_REGIMENS = _shift_regimens()
SHIFT_QUANTILES = (0.05, 0.5, 0.95)


def _curve(dt, dose: float, day: int):
    pred = dt["predictions"]["blood_nad_fold_nmn"]
    doses = np.asarray(pred["dose_mg"].values, dtype=float)
    if not np.any(np.isclose(doses, dose)):
        return None
    return pred.sel(dose_mg=float(doses[np.isclose(doses, dose)][0]), day=day).values


def _q(x, w=None) -> dict:
    q = np.quantile(x, SHIFT_QUANTILES) if w is None else weighted_quantiles(x, w, SHIFT_QUANTILES)
    return {"q05": float(q[0]), "median": float(q[1]), "q95": float(q[2])}


def prediction_shift(full_dt, human_dt=None) -> dict:
    """How much the non-human evidence moves the human prediction of one fit (``full_dt``, every
    study): the fold change at :data:`SHIFT_REGIMENS` from all evidence, from the human evidence
    alone by PSIS reweighting of the same draws (with its Pareto k; numbers only when
    k <= :data:`K_RELIABLE`) and, when given, from a refit on the human evidence alone
    (``human_dt``, e.g. ``run-all``'s ``fits-human-only/mixed``)."""
    studies = non_human_studies(full_dt["observed_data"])
    w, k = drop_studies_weights(full_dt["posterior"], studies)
    idx = np.asarray(full_dt["predictions"]["sample"].values, dtype=int)
    ws = subset_weights(w, idx)
    reliable = bool(k <= K_RELIABLE)
    rows = []
    for dose, day in SHIFT_REGIMENS:
        x = _curve(full_dt, dose, day)
        if x is None:
            continue
        row = {"compound": "NMN", "dose_mg": dose, "day": day, "all_evidence": _q(x),
               "human_only_psis": _q(x, ws) if reliable else None}
        if human_dt is not None:
            y = _curve(human_dt, dose, day)
            row["human_only_refit"] = _q(y) if y is not None else None
        rows.append(row)
    return {"non_human_studies": studies, "pareto_k": k if np.isfinite(k) else None, "reliable": reliable,
            "ess": effective_sample_size(w), "rows": rows}
