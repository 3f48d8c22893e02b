"""Assembling ``comparison.json``: statistical comparison of the NMN-uptake hypotheses.

What it computes from fitted run folders (all hypotheses fitted to the same evidence rows):

* The study is the unit of comparison: PSIS-LOO over studies (leave-one-study-out; the primary
  log-likelihood variable's terms summed per study, or its per-study terms; dimensions are read
  from the run) per hypothesis, ELPD differences with standard errors, stacking weights, Pareto-k
  diagnostics; studies with k > 0.7 can be refitted exactly (``refits``, sweep engine).
* Per-study contributions (ELPD per study per hypothesis and the difference to the best);
  rows / claims as secondary units (their own PSIS-LOO, pointwise table, optional exact row refits).
* Sensitivity to the observation settings: the comparison at every point of
  ``robustness.SENSITIVITY_GRID`` from importance-reweighted draws (``grid_summary``) and whether
  the ranking holds (``robustness_of``); the verdict states it.
* Marginal likelihoods: several independent SMC runs (``pm.sample_smc``), their spread as the
  Monte-Carlo error, and a bridge-sampling estimate from the NUTS draws as an independent
  cross-check; Bayes factors from both, disagreement reported.
* Prior sensitivity: power-scaling diagnostics (``psense``) on the key quantities and the verdict
  under the documented wider prior set, when those runs are given.
* For ``mixed``: the posterior share of NMN use through the direct route, overall and per system.
* LOO-PIT of the numeric rows (calibration of the predictive distributions).
* A verdict built only from these numbers: a headline and a few points (what is decided, what
  is not, why, how robust), ``verdict_parts``; ``verdict`` is the same as plain text.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nadfit.datasets.errors import UserError
from nadfit.fitting.inference.runs import REQUIRED_GROUPS, check_run_dir, load_run, load_summaries
from nadfit.fitting.storage.files import read_json
from nadfit.reports.conventions import CI_QUANTILES, PARETO_K_BAD

COMPARISON_SCHEMA = "nadfit.comparison/1"
BAD_K = PARETO_K_BAD
#: a row whose log-likelihood varies by at most this many nats over the posterior draws has an
#: exact LOO contribution to that precision: p(y_i | y_-i) = 1 / E_post[1 / p(y_i | theta)] lies
#: between the smallest and largest p(y_i | theta), so any estimate inside that range (the raw
#: importance-sampling one is) is off by at most the range. Pareto k is meaningless for such a
#: row (it fits a tail to near-ties: 7.17, 7.73 or NaN on the shipped fits) and is not reported.
CONSTANT_LL_TOL = 0.01


def _r(x, d=6):
    if x is None:
        return None
    x = float(x)
    return None if not math.isfinite(x) else float(f"{x:.{d}g}")


def load_runs(run_dirs: list[Path], allow_failed: bool = False) -> dict:
    """Load and cross-check runs: one per hypothesis, same evidence rows, usable status."""
    load_summaries(run_dirs)
    runs = {}
    ref = None
    for d in run_dirs:
        d = Path(d)
        run = load_run(d, groups=REQUIRED_GROUPS)
        summary = run.summary
        h = summary["hypothesis"]
        if h in runs:
            raise UserError(f"two runs for hypothesis {h!r}", file=str(d))
        if summary["status"] == "failed_gates" and not allow_failed:
            raise UserError("run failed its diagnostics gates; refit it or pass --accept-failed-gates", file=str(d))
        key = (tuple(summary["evidence_ids"]), summary["evidence_fingerprint"])
        if ref is None:
            ref = (key, d)
        elif key != ref[0]:
            raise UserError(f"run was fitted to different evidence than {ref[1]} "
                            "(evidence rows or values differ); refit both on the same evidence", file=str(d))
        runs[h] = run
    return runs


SAMPLE_DIMS = ("chain", "draw")
#: the primary log-likelihood variable of a run (``EvidenceModel.unit_labels``): its terms sum to
#: the total log-likelihood; any further variable of the group is a secondary (diagnostic) unit
PRIMARY_VAR = "evidence"


def loglik_vars(dt) -> list[str]:
    """Variables of the run's ``log_likelihood`` group, the primary one first."""
    names = [str(v) for v in dt["log_likelihood"].data_vars]
    return sorted(names, key=lambda v: v != PRIMARY_VAR)


def unit_dim(dt, var: str = PRIMARY_VAR) -> str:
    """The unit dimension of a log-likelihood variable (read from the data, never assumed)."""
    dims = [str(d) for d in dt["log_likelihood"][var].dims if d not in SAMPLE_DIMS]
    if len(dims) != 1:
        raise UserError(f"log_likelihood variable {var!r} has unit dimensions {dims}; expected exactly one",
                        field=var)
    return dims[0]


def unit_labels(dt, var: str = PRIMARY_VAR) -> list[str]:
    da = dt["log_likelihood"][var]
    dim = unit_dim(dt, var)
    if dim in da.coords:
        return [str(x) for x in da.coords[dim].values]
    return [str(i) for i in range(da.sizes[dim])]


def pointwise_loglik(dt, var: str = PRIMARY_VAR) -> np.ndarray:
    """(chain, draw, unit) pointwise log-likelihood of variable ``var`` (unit dimension read from the data)."""
    return dt["log_likelihood"][var].transpose(*SAMPLE_DIMS, unit_dim(dt, var)).values


def study_of_units(dt, var: str = PRIMARY_VAR) -> list[str]:
    """The study of each unit of ``var``: ``observed_data.study_id`` along the unit dimension when
    the run records it (units are rows or claims), otherwise the unit labels themselves (the
    units already are studies)."""
    dim = unit_dim(dt, var)
    labels = unit_labels(dt, var)
    obs = dt["observed_data"] if "observed_data" in dt.children else None
    if obs is not None and "study_id" in obs.data_vars and tuple(obs["study_id"].dims) == (dim,):
        coord = [str(x) for x in obs[dim].values] if dim in obs.coords else labels
        of = dict(zip(coord, (str(x) for x in obs["study_id"].values)))
        return [of.get(u, u) for u in labels]
    return labels


def group_units(ll: np.ndarray, groups: list[str]) -> tuple[list[str], np.ndarray]:
    """Sum the unit columns of (chain, draw, unit) ``ll`` by group (order of first appearance).
    Summing the log-likelihood terms of one study is exact for leave-one-study-out: the study's
    joint term is the product of its rows' terms given the parameters."""
    order = list(dict.fromkeys(groups))
    idx = {g: [i for i, x in enumerate(groups) if x == g] for g in order}
    return order, np.stack([ll[..., idx[g]].sum(-1) for g in order], -1)


def _lse(x: np.ndarray, axis=0) -> np.ndarray:
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis=axis) + np.log(np.sum(np.exp(x - m), axis=axis))


def _raw_is_elpd(flat: np.ndarray, lw: np.ndarray | None = None) -> np.ndarray:
    """Plain importance-sampling LOO per column of (sample, unit); ``lw`` optional log weights of
    the draws (reweighted posterior): log sum_s w_s / sum_s w_s / p_s."""
    lw = np.zeros(flat.shape[0]) if lw is None else lw
    return _lse(lw) - _lse(lw[:, None] - flat, axis=0)


def _psislw(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ArviZ's PSIS on (chain, draw, unit) *negative* log ratios (ArviZ's convention: it smooths
    exp(-x)); returns normalised smoothed log weights (chain, draw, unit) and k per unit.
    r_eff = 1, as ``az.loo`` uses for these runs (their posterior is not passed along)."""
    import warnings

    import arviz_stats  # noqa: F401  (registers the .azstats accessor)
    import xarray as xr

    da = xr.DataArray(x, dims=(*SAMPLE_DIMS, "unit"))
    with warnings.catch_warnings():
        # every unit's k is returned and reported (counted, flagged, plotted) by the callers
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto distribution")
        lws, k = da.azstats.psislw(r_eff=1.0, dim=list(SAMPLE_DIMS))
    return lws.transpose(*SAMPLE_DIMS, "unit").values, np.asarray(k.values, dtype=float).reshape(-1)


def psis_loo(ll: np.ndarray, log_weights: np.ndarray | None = None) -> dict:
    """PSIS-LOO on a (chain, draw, unit) array (ArviZ's Pareto smoothing); pointwise elpd and k.

    ``log_weights`` (chain, draw), optional: the draws are importance weights of another
    posterior (e.g. the same model under other observation settings, see ``robustness``); unit
    i's LOO ratios are then w_s / p(y_i | theta_s). Without them (or with all zero) this is
    ordinary PSIS-LOO, and ``az.loo`` gives the same numbers (same smoothing, r_eff = 1).

    Units whose log-likelihood varies by at most ``CONSTANT_LL_TOL`` nats over the draws (e.g. a
    finding that depends only on a share fixed by the hypothesis) are ``exact``: their LOO
    density is known to that precision without smoothing (see ``CONSTANT_LL_TOL``); their k is
    0 in ``k`` and they never count as unreliable. Units where Pareto smoothing fails or k
    cannot be estimated (NaN) fall back to plain importance sampling, are flagged
    ``not_estimable`` and get k = inf, so that they count as unreliable (k > 0.7) everywhere.
    Non-finite log-likelihood values (a draw where a term is -inf) are counted in ``n_nonfinite``.

    Returns ``elpd``, ``se``, ``p_loo``, ``elpd_i``, ``k``, ``exact``, ``not_estimable``
    (``raw_is`` is kept as an alias of ``not_estimable``).
    """
    n = ll.shape[-1]
    flat = ll.reshape(-1, n)
    lw2 = np.zeros(ll.shape[:2]) if log_weights is None else np.asarray(log_weights, dtype=float).reshape(ll.shape[:2])
    lw = lw2.reshape(-1)
    constant = np.ptp(flat, axis=0) <= CONSTANT_LL_TOL
    elpd_i = np.where(constant, _raw_is_elpd(flat, lw), np.nan)
    k = np.zeros(n)
    raw_is = np.zeros(n, dtype=bool)

    def _smooth(cols):
        x = ll[..., cols] - lw2[..., None]
        lws, kk = _psislw(x)
        return _lse((lws + ll[..., cols]).reshape(-1, len(cols)), axis=0), kk

    cols = np.where(~constant)[0]
    if cols.size:
        try:
            elpd_i[cols], k[cols] = _smooth(cols)
        except ValueError:
            # Pareto smoothing fails when a unit's largest importance ratios are tied (a
            # finding whose likelihood sits on its floor for many draws); such ratios are
            # bounded, so plain importance sampling is used for that unit and it is flagged
            for c in cols:
                try:
                    e, kk = _smooth(np.array([c]))
                    elpd_i[c], k[c] = float(e[0]), float(kk[0])
                except ValueError:
                    elpd_i[c] = float(_raw_is_elpd(flat[:, [c]], lw)[0])
                    raw_is[c] = True
        nan_k = ~constant & ~np.isfinite(k)
        for c in np.where(nan_k)[0]:
            elpd_i[c] = float(_raw_is_elpd(flat[:, [c]], lw)[0])
        raw_is |= nan_k
        k[raw_is] = np.inf
    wn = lw - _lse(lw)
    lpd = _lse(wn[:, None] + flat, axis=0)
    p_loo = float(np.sum(lpd[~constant] - elpd_i[~constant])) if cols.size else 0.0
    return {"elpd": float(elpd_i.sum()), "se": float(np.sqrt(n * np.var(elpd_i))),
            "p_loo": p_loo, "elpd_i": elpd_i, "k": k, "exact": constant, "not_estimable": raw_is,
            "raw_is": raw_is, "n_nonfinite": int(np.sum(~np.isfinite(flat)))}


def log_mean_ratio(log_ratio: np.ndarray) -> dict:
    """PSIS estimate of log E_post[r] from (chain, draw) log importance ratios log r_s.

    Used for marginal likelihoods under other observation settings:
    log ML_alt = log ML + log E_post[p_alt(y | theta) / p(y | theta)]. ArviZ smooths the largest
    ratios (generalised Pareto tail) and normalises; the draws below the tail are unchanged up to
    that normalising constant, which is read off them to undo the normalisation. Returns
    ``log_mean``, ``k`` (Pareto shape; > 0.7: unreliable, refit needed), ``ess`` (of the smoothed
    weights) and ``method`` ("exact" for constant ratios, "psis", or "raw_is" when smoothing
    fails; then k = inf)."""
    x = np.asarray(log_ratio, dtype=float)
    flat = x.reshape(-1)
    s = flat.size
    if np.ptp(flat) <= 1e-12:
        return {"log_mean": float(flat[0]), "k": 0.0, "ess": float(s), "method": "exact"}
    try:
        lws, k = _psislw(-x.reshape(*x.shape[:2], 1))
        lws, k = lws[..., 0].reshape(-1), float(k[0])
        if not math.isfinite(k):
            raise ValueError("k not estimable")
    except ValueError:
        wn = flat - _lse(flat)
        return {"log_mean": float(_lse(flat) - math.log(s)), "k": math.inf,
                "ess": float(1.0 / np.sum(np.exp(2 * wn))), "method": "raw_is"}
    low = np.argsort(flat)[: s // 2]
    const = float(np.median(flat[low] - lws[low]))
    return {"log_mean": const - math.log(s), "k": k, "ess": float(1.0 / np.sum(np.exp(2 * lws))), "method": "psis"}


def loo_status(res: dict) -> list[str]:
    """Per unit: ``exact`` (constant log-likelihood), ``not_estimable`` (k could not be
    estimated; plain importance sampling), ``high_k`` (k > 0.7) or ``ok``."""
    return ["exact" if e else "not_estimable" if r else "high_k" if k > BAD_K else "ok"
            for e, r, k in zip(res["exact"], res["not_estimable"], res["k"])]


def _k_json(res: dict, i: int):
    """Pareto k of unit i for comparison.json: None when exact or not estimable (see status)."""
    return None if res["exact"][i] or res["not_estimable"][i] else _r(res["k"][i], 3)


def stacking_weights(elpd_i: dict[str, np.ndarray], ll: dict[str, np.ndarray]) -> dict[str, float]:
    """Stacking of predictive distributions (Yao et al. 2018) on LOO densities."""
    from scipy.optimize import minimize

    names = list(elpd_i)
    dens = np.exp(np.stack([elpd_i[h] for h in names], axis=1))  # (n, K)

    def neg(w_raw):
        w = np.exp(w_raw - w_raw.max())
        w /= w.sum()
        return -np.sum(np.log(dens @ w + 1e-300))

    best = min((minimize(neg, x0, method="Nelder-Mead", options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000})
                for x0 in [np.zeros(len(names))] + [np.eye(len(names))[i] * 3 for i in range(len(names))]),
               key=lambda r: r.fun)
    w = np.exp(best.x - best.x.max())
    w /= w.sum()
    return {h: float(x) for h, x in zip(names, w)}


def phi_shares(dt) -> dict | None:
    """Posterior share of NMN use through the direct route (mixed hypothesis)."""
    post = dt["posterior"]
    if "mu_phi" not in post:
        return None
    mu = post["mu_phi"].values.ravel()
    tau = post["tau_phi"].values.ravel()
    z = post["z_phi"].stack(s=("chain", "draw")).transpose("s", ...).values
    labels = [str(x) for x in post["z_phi"].coords[list(post["z_phi"].dims)[-1]].values]
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    out = {}
    rng = np.random.default_rng(0)

    def stat(v):
        return {"mean": _r(np.mean(v)), "ci89_low": _r(np.quantile(v, CI_QUANTILES[0])), "ci89_high": _r(np.quantile(v, CI_QUANTILES[1]))}

    out["population_median_system"] = stat(sig(mu))
    out["new_system"] = stat(sig(mu + tau * rng.standard_normal(mu.shape)))
    for i, lab in enumerate(labels):
        out[lab] = stat(sig(mu + tau * z[:, i]))
    return out


def claim_of_rows(run) -> dict[str, str] | None:
    """evidence_id -> id of the claim the row belongs to, from the run's model (None when the
    model cannot be rebuilt, e.g. a run of an earlier model version)."""
    try:
        model = run.model()
    except UserError:
        return None
    return {model.items[i].evidence_id: c.claim_id for c in model.claims for i in c.rows}


def loo_pit(dt, claim_of: dict[str, str] | None = None) -> dict | None:
    """LOO-PIT of the numeric rows: P(y_rep_i <= y_i | all rows but i), importance-weighted
    (``arviz_stats.loo_pit``). Uniform when the predictive distributions are calibrated.

    The weights come from a per-row log-likelihood variable when the run has one; otherwise
    (claim-level likelihood: rows of a joint claim have no separate terms) from the claim
    terms ``log_likelihood["claim"]`` (leave-one-claim-out conditionals) with ``claim_of``
    mapping each row to its claim: the PIT of a row given every other claim.

    ``{"evidence_id": [...], "pit": [...], "left_out": "row"|"claim"}`` for the rows with a
    reported value and finite replicated draws; None when the run has no posterior predictive
    ``y_rep`` or no matching log-likelihood."""
    if "posterior_predictive" not in dt.children or "y_rep" not in dt["posterior_predictive"].data_vars:
        return None
    import warnings

    import arviz_stats as azs
    import xarray as xr

    yr_da = dt["posterior_predictive"]["y_rep"]
    dims = [str(d) for d in yr_da.dims if d not in SAMPLE_DIMS]
    obs = dt["observed_data"]["value"] if "value" in dt["observed_data"].data_vars else None
    # the log-likelihood variable with the same units as the replicated values (rows): after the
    # study-level rework the primary variable may be per study, and then no PIT is computed
    var = next((v for v in loglik_vars(dt) if len(dims) == 1 and unit_dim(dt, v) == dims[0]
                and dt["log_likelihood"][v].sizes[dims[0]] == yr_da.sizes[dims[0]]), None)
    by_claim = (var is None and claim_of is not None and len(dims) == 1
                and "claim" in loglik_vars(dt) and all(str(e) in claim_of for e in obs[dims[0]].values))
    if obs is None or (var is None and not by_claim):
        return None
    dim = dims[0]
    yrep = yr_da.transpose(*SAMPLE_DIMS, dim)
    ok = np.isfinite(yrep.values).all(axis=(0, 1)) & np.isfinite(obs.values)
    left_out = "claim" if by_claim else "row"
    if not ok.any():
        return {"evidence_id": [], "pit": [], "left_out": left_out}
    if by_claim:
        claim_ids = [str(c) for c in dt["log_likelihood"]["claim"][unit_dim(dt, "claim")].values]
        cols = [claim_ids.index(claim_of[str(e)]) for e in obs[dim].values]
        ll = pointwise_loglik(dt, "claim")[..., cols][..., ok]
    else:
        ll = pointwise_loglik(dt, var)[..., ok]
    y, yr = obs.values[ok], yrep.values[..., ok]
    flat_ll, flat_yr = ll.reshape(-1, ll.shape[-1]), yr.reshape(-1, yr.shape[-1])
    pit = np.full(y.size, np.nan)
    for j in range(y.size):
        if np.ptp(flat_ll[:, j]) > CONSTANT_LL_TOL:
            mini = xr.DataTree.from_dict({
                "posterior_predictive": xr.Dataset({"y": (("chain", "draw", "row"), yr[..., [j]])}),
                "observed_data": xr.Dataset({"y": (("row",), y[[j]])}),
                "log_likelihood": xr.Dataset({"y": (("chain", "draw", "row"), ll[..., [j]])}),
                "posterior": xr.Dataset({"d": (("chain", "draw"), np.zeros(ll.shape[:2]))}),
            })
            try:
                with warnings.catch_warnings():
                    # Pareto k of these rows is reported (and counted) by psis_loo; not repeated here
                    warnings.simplefilter("ignore")
                    pit[j] = float(np.asarray(azs.loo_pit(mini)["y"].values).ravel()[0])
                continue
            except ValueError:
                pass  # tied ratios: plain importance weights below
        lw = -flat_ll[:, j]
        w = np.exp(lw - lw.max())
        pit[j] = float(np.sum(w * (flat_yr[:, j] <= y[j])) / np.sum(w))
    return {"evidence_id": [str(e) for e in obs[dim].values[ok]], "pit": [_r(x, 4) for x in pit],
            "left_out": left_out}


def row_labels(ids) -> dict[str, str]:
    """Short human labels for evidence rows: 'study: analyte (statistic value)'."""
    from nadfit.datasets import load_evidence

    ev = load_evidence().set_index("evidence_id")
    out = {}
    for eid in ids:
        if eid not in ev.index:
            out[eid] = eid
            continue
        r = ev.loc[eid]
        shown = r["value_text"] if isinstance(r["value_text"], str) and r["value_text"] else (
            f"{r['value']:g}" if r["value"] == r["value"] else "")
        when = f", {r['time']:g} {r['time_unit']}" if r["time"] == r["time"] else ""
        group = f"{r['group']}, " if isinstance(r["group"], str) and r["group"] else ""
        out[eid] = f"{r['study_id']}: {group}{r['analyte']}{when} ({r['statistic']} {shown})".strip()
    return out


def _apply_refits(res: dict, labels: list[str], per: dict) -> None:
    """Exact refit values replace PSIS values: per[label] = elpd of that unit."""
    for lab, val in per.items():
        i = labels.index(lab)
        res["elpd_i"][i] = val
        res["k"][i] = 0.0
        res["not_estimable"][i] = False
    res["elpd"] = float(res["elpd_i"].sum())
    res["se"] = float(np.sqrt(len(labels) * np.var(res["elpd_i"])))


def chain_elpd(ll: np.ndarray, res: dict, refitted=()) -> np.ndarray:
    """(chain, unit) pointwise PSIS-LOO of each chain's own draws of ``ll`` (chain, draw, unit);
    the units in ``refitted`` (indices) keep the exact refit values of ``res["elpd_i"]``."""
    out = np.stack([psis_loo(ll[c:c + 1])["elpd_i"] for c in range(ll.shape[0])])
    idx = list(refitted)
    out[:, idx] = res["elpd_i"][idx]
    return out


def chain_split_mcse(a: np.ndarray, b: np.ndarray) -> float | None:
    """Monte Carlo error of a PSIS-LOO difference elpd(a) - elpd(b), from the chains.

    ``a``, ``b``: :func:`chain_elpd` of the two hypotheses. Each chain's draws give their own
    difference; the SD of those over the C chains, divided by sqrt(C), estimates the error of
    the difference computed from all draws (batch means with one batch per chain: it includes
    both the importance-sampling error of the Pareto tails and chains that have not mixed).
    None with fewer than 2 chains or a non-finite chain value.

    Why: with many units at Pareto k > 0.7 this error is not small next to the data-level SE.
    Four realisations of the shipped via-nr vs mixed difference (session 18: default seed and
    seeds 1, 2 with numpyro; nutpie's 4000 draws) gave 1.73, 0.95, 1.63 and 0.05; this estimate
    gave 0.45-0.56 for each of them."""
    diffs = np.sum(a - b, axis=1)
    if len(diffs) < 2 or not np.all(np.isfinite(diffs)):
        return None
    return float(np.std(diffs, ddof=1) / math.sqrt(len(diffs)))


def refit_mcse_of(per: dict | None, refitted) -> float:
    """Monte Carlo SE of the sum of one hypothesis' exact refit values (independent refits: root
    sum of squares); NaN when a refitted unit has no SE (an old refit, or one without an
    estimable SE), 0.0 when nothing was refitted."""
    if not refitted:
        return 0.0
    vals = [(per or {}).get(u) for u in refitted]
    if any(v is None or not math.isfinite(v) for v in vals):
        return math.nan
    return math.sqrt(sum(v * v for v in vals))


def difference_mcse(chains_part: float | None, refit_var: float) -> float | None:
    """Monte Carlo error of a PSIS-LOO difference with exact refits: the chains' error of the
    PSIS part (``chain_split_mcse``; refitted units are constant across chains there, so it
    leaves them out) and the refits' own errors (variance ``refit_var``), independent.
    None when the chains' part is unknown; the chains' part alone when the refits' is (NaN;
    ``mcse_refits`` then says so in comparison.json)."""
    if chains_part is None:
        return None
    if math.isnan(refit_var):
        return chains_part
    return math.sqrt(chains_part ** 2 + refit_var)


def _loo_json(res: dict, labels: list[str], refitted=()) -> dict:
    """One hypothesis' PSIS-LOO for comparison.json (unit-neutral keys)."""
    kk = res["k"]
    usable = ~res["exact"] & np.isfinite(kk)
    nonfinite = [labels[i] for i in np.where(~np.isfinite(res["elpd_i"]))[0]]
    out = {"elpd": _r(res["elpd"]), "se": _r(res["se"]), "p_loo": _r(res["p_loo"]),
           # units whose PSIS estimate is unreliable: k > 0.7 or k not estimable (never exact units)
           "n_bad_k": int(np.sum(kk > BAD_K)),
           "k_max": _r(np.max(kk[usable]), 3) if usable.any() else None,
           "bad_k_units": [labels[i] for i in np.where(kk > BAD_K)[0]],
           "n_exact": int(res["exact"].sum()),
           "exact_units": [labels[i] for i in np.where(res["exact"])[0]],
           # plain importance sampling was used (Pareto smoothing failed or k not estimable)
           "n_raw_is": int(res["not_estimable"].sum()),
           "not_estimable_units": [labels[i] for i in np.where(res["not_estimable"])[0]],
           "refitted_units": sorted(refitted),
           "n_nonfinite_draws": int(res.get("n_nonfinite", 0))}
    if nonfinite:
        out["nonfinite_units"] = nonfinite
        out["nonfinite_reason"] = ("the LOO density is zero in floating point (log-likelihood -inf in the "
                                   "draws that carry the weight); shown as null, ELPD totals are -inf")
    return out


UNIT_NAMES = {"study": ("study", "studies"), "evidence_id": ("row", "rows"), "claim": ("claim", "claims"),
              "claim_id": ("claim", "claims")}


def _unit_words(dim: str) -> tuple[str, str]:
    return UNIT_NAMES.get(dim, (dim, dim + " units"))


#: SMC and bridge sampling must agree within this many nats (per hypothesis and per Bayes factor)
AGREE_NATS = 1.0


def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def ml_agreement(smc: dict | None, bridge: dict | None) -> dict:
    """Do SMC and bridge sampling agree within ``AGREE_NATS`` for one hypothesis, and if not, why not.

    ``reasons`` names what the two results themselves show: a missing estimate, a stated Monte Carlo
    error that is itself too large for a 1-nat check, an SMC mutation kernel that barely moved, and
    otherwise the direction of the gap with its usual cause (SMC below bridge: the particle set misses
    posterior mass, and the log of SMC's unbiased evidence estimate is biased low by about half the
    variance of the log weights; bridge below SMC: the posterior draws or the warp cover the posterior
    poorly)."""
    s_val = (smc or {}).get("log_ml_mean")
    b_val = (bridge or {}).get("log_ml")
    s_se = (smc or {}).get("log_ml_mc_se")
    b_se = (bridge or {}).get("mc_se")
    out = {"smc": s_val, "smc_mc_se": s_se, "bridge": b_val, "bridge_mc_se": b_se, "gap": None, "agree": None,
           "reasons": []}
    reasons = out["reasons"]
    if not _finite(s_val):
        reasons.append("SMC not run" if not smc else "SMC gave no finite estimate")
    if not _finite(b_val):
        reasons.append((bridge or {}).get("note") or ("bridge sampling not run" if not bridge
                                                       else "bridge sampling gave no finite estimate"))
    if reasons:
        return out
    gap = float(s_val - b_val)
    out["gap"] = gap
    out["agree"] = bool(abs(gap) <= AGREE_NATS)
    if out["agree"]:
        return out
    runs = [r for r in (smc.get("log_ml_runs") or []) if _finite(r)]
    if _finite(s_se) and s_se > AGREE_NATS / 3:
        reasons.append(f"SMC runs scatter (MC SE {s_se:.2f}, runs {min(runs):.1f} to {max(runs):.1f}): "
                       "too few particles for a 1-nat check")
    if _finite(b_se) and b_se > AGREE_NATS / 3:
        reasons.append(f"bridge sampling's MC error is {b_se:.2f} nats (ESS {bridge.get('neff') or 0:.0f}): "
                       "too few effective posterior draws")
    acc = [a for a in (smc.get("mean_acceptance") or []) if _finite(a)]
    if acc and min(acc) < 0.2:
        reasons.append(f"the SMC mutation kernel accepted only {100 * min(acc):.0f} % of its moves: "
                       "the particles barely moved between temperatures")
    noise = math.hypot(s_se if _finite(s_se) else 0.0, b_se if _finite(b_se) else 0.0)
    what = (f"the gap ({abs(gap):.1f} nats) is {abs(gap) / noise:.0f} x the combined MC error: a bias, not noise"
            if noise > 0 and abs(gap) > 3 * noise else f"the gap is {abs(gap):.1f} nats")
    if gap < 0:
        reasons.append(f"SMC below bridge; {what}. Usual cause: the SMC particles miss part of the posterior mass "
                       "(more particles or mutation steps raise the SMC estimate until it levels off)")
    else:
        reasons.append(f"bridge below SMC; {what}. Usual cause: the posterior draws, or the warp fitted to them, "
                       "miss part of the posterior (check the fit's convergence gates)")
    return out


def build_comparison(runs: dict, smc: dict | None = None, bridge: dict | None = None,
                     sensitivity: dict | None = None, refits: dict | None = None,
                     study_refits: dict | None = None, obs_grid: dict | None = None,
                     study_refit_mcse: dict | None = None) -> dict:
    """``comparison.json`` from loaded runs and the estimates computed by the pipeline.

    The primary unit is the study: the primary log-likelihood variable's terms summed per study
    (exact for leave-one-study-out) or, when the run's terms already are per study, those terms.
    PSIS-LOO over studies decides ``loo``, ``ranking`` and ``stacking_weights``; ``by_study``
    holds each study's contribution per hypothesis and its difference to the best hypothesis;
    units of the other log-likelihood variables (rows, claims) are secondary (``secondary``,
    ``pointwise``). ``refits[h][unit]`` / ``study_refits[h][study]``: exact refit ELPDs that
    replace PSIS values of secondary / primary units; ``study_refit_mcse[h][study]``: the Monte
    Carlo SE of each such exact value (``exact_elpd``), added to the chains' error of a difference
    (``difference_mcse``). ``obs_grid``: ``robustness.observation_grid``."""
    names = list(runs)
    first = next(iter(runs.values()))
    dt0 = first.dt
    var = PRIMARY_VAR
    labels = unit_labels(dt0, var)
    dim = unit_dim(dt0, var)
    study_of = study_of_units(dt0, var)
    aggregated = study_of != labels
    ll_units = {h: pointwise_loglik(r.dt, var) for h, r in runs.items()}
    studies = list(dict.fromkeys(study_of))
    primary = {h: (group_units(ll_units[h], study_of)[1] if aggregated else ll_units[h]) for h in names}
    loo = {h: psis_loo(primary[h]) for h in names}
    s_refitted = {h: set(per) for h, per in (study_refits or {}).items()}
    for h, per in (study_refits or {}).items():
        _apply_refits(loo[h], studies, per)
    weights = stacking_weights({h: loo[h]["elpd_i"] for h in names}, primary)
    order = sorted(names, key=lambda h: -loo[h]["elpd"])
    best = order[0]
    per_chain = {h: chain_elpd(primary[h], loo[h], [studies.index(u) for u in s_refitted.get(h, ())])
                 for h in names}
    refit_var = {h: refit_mcse_of((study_refit_mcse or {}).get(h), s_refitted.get(h, ())) ** 2 for h in names}
    ranking = []
    for rank, h in enumerate(order):
        diff = loo[best]["elpd_i"] - loo[h]["elpd_i"]
        chains_part = chain_split_mcse(per_chain[best], per_chain[h])
        refit_part = 0.0 if h == best else refit_var[best] + refit_var[h]
        ranking.append({"hypothesis": h, "rank": rank, "elpd": _r(loo[h]["elpd"]),
                        "elpd_diff": _r(diff.sum()), "dse": _r(math.sqrt(len(diff) * np.var(diff))),
                        "mcse": _r(difference_mcse(chains_part, refit_part)),
                        "mcse_chains": _r(chains_part),
                        "mcse_refits": _r(math.sqrt(refit_part)),  # NaN (unknown) -> None
                        "weight": _r(weights[h])})
    # secondary units: the rows of the primary variable when they were summed per study, and every
    # other log-likelihood variable of the runs (e.g. claims)
    secondary: dict[str, dict] = {}
    if aggregated:
        secondary[var] = {"dim": dim, "labels": labels, "study": study_of,
                          "res": {h: psis_loo(ll_units[h]) for h in names}}
    for v in loglik_vars(dt0):
        if v != var:
            secondary[v] = {"dim": unit_dim(dt0, v), "labels": unit_labels(dt0, v), "study": study_of_units(dt0, v),
                            "res": {h: psis_loo(pointwise_loglik(r.dt, v)) for h, r in runs.items()}}
    refitted: dict[str, set] = {}
    if secondary:
        sv = next(iter(secondary.values()))
        for h, per in (refits or {}).items():
            # exact refits score units of the primary variable; they replace the PSIS values of
            # a secondary variable only when it has those units (the claim unit does not)
            if all(lab in sv["labels"] for lab in per):
                _apply_refits(sv["res"][h], sv["labels"], per)
                refitted[h] = set(per)
    pointwise = []
    if secondary:
        sv_name, sv = next(iter(secondary.items()))
        row_lab = row_labels(sv["labels"])  # evidence rows get a readable label; other units keep theirs
        status = {h: loo_status(sv["res"][h]) for h in names}
        for i, u in enumerate(sv["labels"]):
            entry = {"evidence_id": u, "unit": u, "variable": sv_name, "study_id": sv["study"][i],
                     "label": row_lab.get(u, u),
                     "elpd": {h: _r(sv["res"][h]["elpd_i"][i]) for h in names},
                     "pareto_k": {h: _k_json(sv["res"][h], i) for h in names},
                     "loo_status": {h: ("exact_refit" if u in refitted.get(h, ()) else status[h][i]) for h in names}}
            if any(not math.isfinite(sv["res"][h]["elpd_i"][i]) for h in names):
                entry["note"] = "ELPD not finite (zero LOO density in floating point); shown as null"
            pointwise.append(entry)
    p_status = {h: loo_status(loo[h]) for h in names}
    by_study = []
    for j, s in enumerate(studies):
        entry = {"study_id": s, "n_units": study_of.count(s) if aggregated else 1, "n_rows": study_of.count(s),
                 "elpd": {h: _r(loo[h]["elpd_i"][j]) for h in names},
                 "diff": {h: _r(loo[h]["elpd_i"][j] - loo[best]["elpd_i"][j]) for h in names},
                 "pareto_k": {h: _k_json(loo[h], j) for h in names},
                 "loo_status": {h: ("exact_refit" if s in s_refitted.get(h, ()) else p_status[h][j]) for h in names}}
        if aggregated:
            idx = [i for i, x in enumerate(study_of) if x == s]
            entry["rows_elpd"] = {h: _r(secondary[var]["res"][h]["elpd_i"][idx].sum()) for h in names}
        by_study.append(entry)
    loo_out = {h: _loo_json(loo[h], studies, s_refitted.get(h, ())) for h in names}
    secondary_out = {}
    for v, sv in secondary.items():
        one, many = _unit_words(sv["dim"])
        secondary_out[v] = {"dim": sv["dim"], "unit": one, "units": many, "n_units": len(sv["labels"]),
                            "loo": {h: _loo_json(sv["res"][h], sv["labels"], refitted.get(h, ()) if v == next(iter(secondary)) else ())
                                    for h in names}}
    bayes_factors = []
    for i, h1 in enumerate(names):
        for h2 in names[i + 1:]:
            entry = {"h1": h1, "h2": h2}
            if smc and h1 in smc and h2 in smc:
                a, b = smc[h1], smc[h2]
                entry["log_bf"] = _r(a["log_ml_mean"] - b["log_ml_mean"])
                entry["mc_se"] = _r(math.hypot(a["log_ml_mc_se"], b["log_ml_mc_se"]))
            if (bridge and h1 in bridge and h2 in bridge
                    and math.isfinite(bridge[h1]["log_ml"]) and math.isfinite(bridge[h2]["log_ml"])):
                entry["bridge_log_bf"] = _r(bridge[h1]["log_ml"] - bridge[h2]["log_ml"])
                entry["bridge_mc_se"] = _r(math.hypot(bridge[h1]["mc_se"], bridge[h2]["mc_se"]))
            if "log_bf" in entry and "bridge_log_bf" in entry:
                entry["estimators_agree"] = bool(abs(entry["log_bf"] - entry["bridge_log_bf"]) <= AGREE_NATS)
            if len(entry) > 2:
                bayes_factors.append(entry)
    grid_out = None
    if obs_grid is not None:
        gnames = [p["name"] for p in obs_grid["grid"]]
        deltas = {h: [p["delta"][var] for p in obs_grid["runs"][h]["points"]] for h in names}
        g = grid_summary(ll_units, deltas, gnames, groups=study_of if aggregated else None,
                         smc=smc, bridge=bridge if bridge else None)
        for gp, p in zip(obs_grid["grid"], g["points"]):
            p.update(overrides=gp["overrides"], note=gp.get("note", ""))
        grid_out = {"grid": obs_grid["grid"], "points": g["points"], **robustness_of(g, order),
                    "stored_gap": {h: _r(obs_grid["runs"][h]["stored_gap"], 3) for h in names},
                    "wall_time_s": _r(obs_grid.get("wall_time_s", math.nan), 4)}
    one, many = _unit_words("study")
    out = {
        "schema": COMPARISON_SCHEMA,
        "runs": {h: str(r.dir) for h, r in runs.items()},
        "evidence_fingerprint": first.summary["evidence_fingerprint"],
        "unit": {"name": one, "plural": many, "variable": var, "dim": "study" if aggregated else dim,
                 "aggregated_from": dim if aggregated else None, "n": len(studies),
                 "method": ("leave-one-study-out PSIS-LOO on the primary log-likelihood terms summed per study"
                            if aggregated else "PSIS-LOO on the per-study primary log-likelihood terms")},
        "n_rows": len(labels) if aggregated else None,
        "n_studies": len(studies),
        "loo": loo_out,
        "ranking": ranking,
        "stacking_weights": {h: _r(w) for h, w in weights.items()},
        "by_study": by_study,
        "secondary": secondary_out,
        "pointwise": pointwise,
        "smc": smc,
        "bridge": bridge,
        "ml_agreement": {h: ml_agreement((smc or {}).get(h), (bridge or {}).get(h)) for h in names
                         if (smc or {}).get(h) or (bridge or {}).get(h)},
        "bayes_factors": bayes_factors,
        "sensitivity": sensitivity,
        "observation_grid": grid_out,
        "phi_share": phi_shares(runs["mixed"].dt) if "mixed" in runs else None,
        "run_status": {h: r.summary.get("status") for h, r in runs.items()},
        "loo_pit": {h: loo_pit(r.dt, claim_of_rows(r)) for h, r in runs.items()},
    }
    if study_refits:
        out["study_refits"] = {h: sorted(v) for h, v in study_refits.items()}
    if study_refit_mcse:
        out["study_refit_mcse"] = {h: {u: _r(v) for u, v in sorted(per.items())} for h, per in study_refit_mcse.items()}
    out["verdict_parts"] = verdict(out)
    out["verdict"] = verdict_text(out["verdict_parts"])
    return out


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
                            "weight": _r(w[h]), "n_bad_k": int(np.sum(res[h]["k"] > BAD_K)),
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
        unreliable = [h for h in hyps if not ml[h]["k"] <= BAD_K]
        points.append({
            "name": name, "ranking": ranking, "order": order,
            "reweighting": {h: {"log_ml_shift": _r(ml[h]["log_mean"]), "pareto_k": _r(ml[h]["k"], 3),
                                "ess": _r(ml[h]["ess"], 4), "method": ml[h]["method"],
                                "reliable": ml[h]["k"] <= BAD_K} for h in hyps},
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


def attribution_drivers(cmp: dict, h_best: str, h_other: str, k: int = 3) -> tuple[list, list]:
    """Studies that most favour h_best over h_other, and those that most favour h_other."""
    diffs = [(s["study_id"], (s["elpd"][h_best] or 0) - (s["elpd"][h_other] or 0)) for s in cmp["by_study"]]
    pro = [d for d in sorted(diffs, key=lambda x: -x[1]) if d[1] > 0.1][:k]
    con = [d for d in sorted(diffs, key=lambda x: x[1]) if d[1] < -0.1][:k]
    return pro, con


#: |ΔELPD| / SE above which a difference is called clear, and above which modest (below: not decided)
Z_CLEAR, Z_MODEST = 4.0, 2.0


def _se(r: dict) -> float:
    """The SE a difference is judged by: the data-level SE of the ELPD difference combined with
    the Monte Carlo error of its PSIS estimate (``mcse``, from the chains), as independent errors."""
    return math.hypot(r.get("dse") or 0.0, r.get("mcse") or 0.0)


def _z(r: dict) -> float:
    se = _se(r)
    return (r["elpd_diff"] / se) if se else float("inf")


def _combined(ranking: list) -> str:
    """What "standard errors" means in a headline: with Monte Carlo errors, both kinds."""
    return (" (data-level and Monte Carlo error combined)"
            if any(r.get("mcse") is not None for r in ranking[1:]) else "")


def _diff_text(r: dict) -> str:
    """ΔELPD ± SE, the Monte Carlo error when known, and the combined z."""
    text = f"ΔELPD {r['elpd_diff']:.1f} ± {r['dse']:.1f}"
    if r.get("mcse") is None:
        return f"{text} ({_z(r):.1f} SE)"
    return f"{text}; Monte Carlo error ± {r['mcse']:.1f} ({_z(r):.1f} SE combined)"


def _names(hs) -> str:
    hs = [f"'{h}'" for h in hs]
    return hs[0] if len(hs) == 1 else ", ".join(hs[:-1]) + " and " + hs[-1]


def verdict(cmp: dict) -> dict:
    """The verdict as a headline and a few points, built only from the numbers in ``cmp``.

    ``{"headline": str, "provisional": [str], "points": [{"aspect", "text"}]}`` with aspects
    ``decided`` (differences beyond 2 SE of the ELPD difference), ``not decided`` (within 2 SE),
    ``why`` (the studies that drive the ranking), ``robustness`` (PSIS reliability, exact
    refits, Bayes-factor estimators, priors, convergence gates). ``provisional`` lists what keeps
    the headline from being final; it is appended to the headline, never left out."""
    rk = cmp["ranking"]
    best = rk[0]["hypothesis"]
    w = cmp.get("stacking_weights") or {}
    others = rk[1:]
    ahead = [r for r in others if _z(r) > Z_MODEST]
    tied = [r for r in others if _z(r) <= Z_MODEST]
    strength = "clearly" if all(_z(r) > Z_CLEAR for r in ahead) else "modestly"
    if not others:
        headline = f"Only '{best}' was compared."
    elif not ahead:
        headline = (f"No hypothesis is preferred: PSIS-LOO ranks '{best}' first, but every difference is within "
                    f"{Z_MODEST:g} standard errors{_combined(rk)}.")
    elif not tied:
        headline = f"'{best}' is preferred: it predicts the evidence {strength} better than {_names(r['hypothesis'] for r in ahead)}."
    elif max(rk.index(r) for r in tied) < min(rk.index(r) for r in ahead):
        headline = (f"{_names([best] + [r['hypothesis'] for r in tied])} cannot be told apart by PSIS-LOO; "
                    f"{_names(r['hypothesis'] for r in ahead)} predict{'s' if len(ahead) == 1 else ''} the evidence worse.")
    else:  # a hypothesis within noise of the best ranks below one that is beyond it (a wider SE):
        # no grouping into "tied" and "worse" then, which would put the lower-ranked one above
        headline = (f"PSIS-LOO ranks '{best}' first: it predicts the evidence {strength} better than "
                    f"{_names(r['hypothesis'] for r in ahead)}; its difference from "
                    f"{_names(r['hypothesis'] for r in tied)} is within {Z_MODEST:g} standard errors{_combined(rk)}.")
    points = []
    for r in ahead:
        strength = "clearly" if _z(r) > Z_CLEAR else "modestly"
        points.append({"aspect": "decided", "text":
                       f"'{best}' predicts the evidence {strength} better than '{r['hypothesis']}': "
                       f"{_diff_text(r)}."})
    for r in tied:
        text = f"'{best}' vs '{r['hypothesis']}': {_diff_text(r)}, within noise."
        if w.get(best) is not None and w[best] > 0.9:
            text += (f" Stacking still puts weight {w[best]:.2f} on '{best}' (stacking picks the best "
                     "predictive mixture; it is not a probability that the hypothesis is true).")
        points.append({"aspect": "not decided", "text": text})
    if not ahead and not tied:
        points.append({"aspect": "not decided", "text": "Nothing to compare."})
    if others:
        ref = (tied or ahead)[0]["hypothesis"]
        pro, con = attribution_drivers(cmp, best, ref)
        text = f"'{best}' over '{ref}' is driven by " + (
            ", ".join(f"{s} ({d:+.1f})" for s, d in pro) if pro else "no single study (all within ±0.1)")
        if con:
            text += "; against it: " + ", ".join(f"{s} ({d:+.1f})" for s, d in con)
        points.append({"aspect": "why", "text": text + " (ΔELPD per study)."})
    ps = cmp.get("phi_share")
    if ps and "population_median_system" in ps:
        p = ps["population_median_system"]
        points.append({"aspect": "why", "text":
                       f"Under 'mixed', the direct-route share for a typical system is {p['mean']:.2f} "
                       f"(89 % interval {p['ci89_low']:.2f}–{p['ci89_high']:.2f})."})
    provisional = []
    # PSIS reliability (of the primary unit: studies; older comparisons: rows)
    unit = cmp.get("unit") or {}
    one, many = unit.get("name", "row"), unit.get("plural", "rows")
    bad = {h: v["n_bad_k"] for h, v in cmp["loo"].items() if v.get("n_bad_k")}
    exact = {h: v.get("n_exact", 0) for h, v in cmp["loo"].items() if v.get("n_exact")}
    raw = {h: v.get("n_raw_is", 0) for h, v in cmp["loo"].items() if v.get("n_raw_is")}
    n_units = unit.get("n") or cmp.get("n_rows")
    refit_note = ""
    if cmp.get("study_refits"):
        refit_note = " Exact refits replaced PSIS for " + ", ".join(
            f"{len(v)} {one}(s) of {h}" for h, v in cmp["study_refits"].items() if v) + "."
    if cmp.get("reloo"):
        refit_note += " Exact refits replaced PSIS for " + ", ".join(
            f"{len(v)} row(s) of {h}" for h, v in cmp["reloo"].items() if v) + "."
    if bad:
        text = (f"PSIS-LOO over {many} is unreliable (Pareto k > 0.7 or not estimable) for " +
                ", ".join(f"{n} {one}(s) of {h}" for h, n in bad.items()) +
                (f" out of {n_units}" if n_units else "") + ".")
        if raw:
            text += (" Plain importance sampling (Pareto smoothing failed) was used for " +
                     ", ".join(f"{n} of {h}" for h, n in raw.items()) + ".")
        text += refit_note or (" Exact refits (--refit-studies) were not run." if one == "study" else
                               " Exact refits (--reloo) were not run; leave-one-study-out is the cross-check.")
        provisional.append(f"PSIS-LOO unreliable for some {many}")
    else:
        text = f"PSIS-LOO is reliable for every {one} (Pareto k ≤ 0.7)." + refit_note
    if exact:
        text += (f" {many.capitalize()} with a constant log-likelihood are exact and not counted: "
                 + ", ".join(f"{n} of {h}" for h, n in exact.items()) + ".")
    points.append({"aspect": "robustness", "text": text})
    # observation settings: the sensitivity grid (importance reweighting)
    grid = cmp.get("observation_grid")
    if grid:
        rb = grid_statement(grid, [r["hypothesis"] for r in rk])
        headline_extra = " " + rb["headline"]
        points.append({"aspect": "robustness", "text": rb["summary"]})
        for t, p in zip(rb["points"], grid.get("points") or []):
            if not p.get("reliable", True) or p.get("order") != [r["hypothesis"] for r in rk]:
                points.append({"aspect": "robustness", "text": t})
        if not grid.get("ranking_holds", True):
            provisional.append("not robust to the observation settings")
    else:
        headline_extra = ""
    # Bayes factors: both estimators, agreement
    bfs = cmp.get("bayes_factors") or []
    if bfs:
        disagree = [b for b in bfs if b.get("estimators_agree") is False]
        single = [b for b in bfs if ("log_bf" in b) != ("bridge_log_bf" in b)]
        parts = []
        for b in bfs:
            est = []
            if b.get("log_bf") is not None:
                est.append(f"SMC {b['log_bf']:+.1f} ± {b.get('mc_se') or 0:.1f}")
            if b.get("bridge_log_bf") is not None:
                est.append(f"bridge {b['bridge_log_bf']:+.1f} ± {b.get('bridge_mc_se') or 0:.1f}")
            parts.append(f"{b['h1']} vs {b['h2']} " + " / ".join(est))
        if disagree:
            text = ("The two marginal-likelihood estimators DISAGREE for " +
                    ", ".join(f"{b['h1']} vs {b['h2']}" for b in disagree) + "; Bayes factors are not usable: ")
            provisional.append("Bayes-factor estimators disagree")
        elif single:
            text = "Bayes factors from one estimator only (not cross-checked): "
        else:
            text = "SMC and bridge sampling agree on every Bayes factor: "
        text += "; ".join(parts) + " (log BF, ± 1 MC SE)."
        not_agree = {h: a for h, a in (cmp.get("ml_agreement") or {}).items() if a.get("agree") is False}
        if not_agree:
            text += " Marginal likelihoods more than 1 nat apart: " + "; ".join(
                f"{h} (SMC {a['smc']:.1f}, bridge {a['bridge']:.1f}: " + "; ".join(a["reasons"]) + ")"
                for h, a in not_agree.items()) + "."
        elif cmp.get("ml_agreement") and all(a.get("agree") for a in cmp["ml_agreement"].values()):
            text += " Each hypothesis's two marginal-likelihood estimates agree within 1 nat."
        points.append({"aspect": "robustness", "text": text})
    # priors
    sens = cmp.get("sensitivity") or {}
    prior_bits = []
    if sens.get("wider_prior_best") is not None:
        if sens["wider_prior_best"] == best:
            prior_bits.append("the ranking's leader survives the wider prior set")
        else:
            prior_bits.append(f"under the wider prior set '{sens['wider_prior_best']}' ranks first: "
                              "the verdict is not robust to the priors")
            provisional.append("not robust to the priors")
    if sens.get("psense_flagged"):
        by_h: dict[str, int] = {}
        for item in sens["psense_flagged"]:
            h = item.rsplit("(", 1)[-1].rstrip(")") if "(" in item else "?"
            by_h[h] = by_h.get(h, 0) + 1
        n_par = {h: len((v or {}).get("rows") or []) for h, v in (sens.get("psense") or {}).items()}
        prior_bits.append("power-scaling flags prior or likelihood sensitivity for " + ", ".join(
            f"{n}{' of ' + str(n_par[h]) if n_par.get(h) else ''} parameters of {h}" for h, n in sorted(by_h.items())))
    if prior_bits:
        text = "; ".join(prior_bits)
        points.append({"aspect": "robustness", "text": text[0].upper() + text[1:] + "."})
    failed = {h: st for h, st in (cmp.get("run_status") or {}).items() if st != "ok"}
    if failed:
        points.append({"aspect": "robustness", "text": "Runs that did not pass their convergence gates: " +
                       ", ".join(f"{h} ({st})" for h, st in failed.items()) + "; every number above is provisional."})
        provisional.insert(0, "convergence gates failed")
    headline += headline_extra
    if provisional:
        headline += " Provisional: " + "; ".join(provisional) + "."
    out = {"headline": headline, "provisional": provisional, "points": points}
    if grid:
        out["robustness"] = rb
    return out


def _grid_range(grid: dict) -> str:
    """'eps 0.02–0.2, tau 0.05–0.2' from the grid's overrides."""
    vals: dict[str, list] = {}
    for p in grid.get("grid") or []:
        for k, v in (p.get("overrides") or {}).items():
            vals.setdefault(k, []).append(v)
    return ", ".join(f"{k} {min(v):g}–{max(v):g}" if len(set(v)) > 1 else f"{k} {v[0]:g}" for k, v in vals.items())


def grid_statement(grid: dict, default_order: list[str]) -> dict:
    """The robustness statement of the observation-settings grid: a headline sentence and bullets."""
    n, rng = grid.get("n_points", len(grid.get("points") or [])), _grid_range(grid)
    unreliable = grid.get("unreliable") or []
    flips = grid.get("flips") or []
    what = f"{n} observation settings ({rng})" if rng else f"{n} observation settings"
    if flips:
        f = flips[0]
        headline = (f"Not robust: the ranking changes across the {what}: under {f['name']} the order is "
                    + " > ".join(f"'{h}'" for h in f["order"])
                    + (f" (and at {len(flips) - 1} more setting(s))" if len(flips) > 1 else "") + ".")
    else:
        if unreliable:
            headline = (f"The ranking holds at the {n - len(unreliable)} of {what} that importance reweighting "
                        f"assesses reliably; refit needed for {', '.join(u['name'] for u in unreliable)}.")
        else:
            headline = f"The ranking holds across the {what}."
    pts = []
    for p in grid.get("points") or []:
        rk = p.get("ranking") or []
        elpd = ", ".join(f"{r['hypothesis']} {r['elpd']:.1f}" if r.get("elpd") is not None else f"{r['hypothesis']} –"
                         for r in rk)
        w = ", ".join(f"{r['hypothesis']} {r['weight']:.2f}" for r in rk if r.get("weight") is not None)
        ks = [v.get("pareto_k") for v in (p.get("reweighting") or {}).values()]
        kmax = max((k for k in ks if k is not None), default=None)
        kmax = math.inf if any(k is None for k in ks) else kmax
        text = f"{p['name']}: ELPD {elpd}; stacking {w}"
        bf = [b for b in p.get("bayes_factors") or [] if b.get("smc_log_bf") is not None or b.get("bridge_log_bf") is not None]
        if bf:
            text += "; log BF " + ", ".join(
                f"{b['h1']} vs {b['h2']} " + " / ".join(
                    x for x in (f"SMC {b['smc_log_bf']:+.1f}" if b.get("smc_log_bf") is not None else "",
                                f"bridge {b['bridge_log_bf']:+.1f}" if b.get("bridge_log_bf") is not None else "") if x)
                for b in bf)
        text += f"; reweighting max k {kmax:.2f}" if kmax is not None and math.isfinite(kmax) else "; reweighting k not estimable"
        if not p.get("reliable", True):
            text += f" — UNRELIABLE for {', '.join(p.get('refit_needed') or [])}: refit under these settings needed"
        elif p.get("order") and p["order"] != list(default_order):
            text += " — ranking differs"
        pts.append(text + ".")
    summary = f"Sensitivity grid ({what}, posterior draws importance-reweighted): "
    ranges = []
    for h in default_order:
        ws = [r["weight"] for p in grid.get("points") or [] for r in p.get("ranking") or []
              if r["hypothesis"] == h and r.get("weight") is not None]
        if ws:
            ranges.append(f"{h} {min(ws):.2f}–{max(ws):.2f}")
    summary += ("stacking weight " + ", ".join(ranges)) if ranges else "no stacking weights"
    bfr = {}
    for p in grid.get("points") or []:
        for b in p.get("bayes_factors") or []:
            v = b.get("bridge_log_bf") if b.get("bridge_log_bf") is not None else b.get("smc_log_bf")
            if v is not None:
                bfr.setdefault(f"{b['h1']} vs {b['h2']}", []).append(v)
    if bfr:
        summary += "; log BF " + ", ".join(f"{k} {min(v):+.1f} to {max(v):+.1f}" for k, v in bfr.items())
    summary += f"; {grid.get('n_reliable', 0)} of {n} settings reliably reweighted (Pareto k ≤ 0.7)."
    return {"headline": headline, "summary": summary, "points": pts,
            "ranking_holds": bool(grid.get("ranking_holds", True))}


def verdict_text(v: dict) -> str:
    """The verdict as plain text for terminals and ``comparison.json``'s ``verdict``."""
    return v["headline"] + "".join(f"\n  • {p['aspect']}: {p['text']}" for p in v["points"])


def exact_elpd(ll) -> tuple[float, float | None]:
    """log mean_s p(y | theta_s) and its Monte Carlo SE, from the log-likelihood ``ll``
    (chain, draw) of held-out data at the draws of an exact refit.

    SE by the delta method: with w_s = p(y | theta_s), se(log mean w) = sd(w) / (mean(w) sqrt(ESS)),
    ESS the effective sample size of w for its mean (autocorrelation within the chains counted).
    A refit's own sampling error: without it, a comparison that replaces PSIS values by exact
    ones would count those units as free of Monte Carlo error. Heavy-tailed w (a held-out
    likelihood that a few draws dominate) make the SE itself unreliable; it is then too small.
    Returns (elpd, None) when the SE cannot be estimated (a single draw, or no finite value)."""
    from arviz_stats.base import array_stats

    ll = np.atleast_2d(np.asarray(ll, dtype=float))
    m = float(np.max(ll))
    if not math.isfinite(m):
        return -math.inf, None
    w = np.exp(ll - m)
    mean = float(np.mean(w))
    elpd = m + math.log(mean)
    if w.size < 4 or np.ptp(w) == 0.0:
        return elpd, (0.0 if w.size >= 4 else None)
    ess = float(array_stats.ess(w, chain_axis=0, draw_axis=1, method="mean"))
    if not math.isfinite(ess) or ess <= 0:
        return elpd, None
    return elpd, float(np.std(w, ddof=1) / (mean * math.sqrt(ess)))


def exact_refit_elpd(run, evidence_ids: list[str], draws: int = 300, tune: int = 300, chains: int = 2,
                     log=print) -> dict[str, float]:
    """Exact leave-one-out for the given rows: refit without the row, score it on the refit draws.

    elpd_i = log mean_s p(row_i | theta_s), theta_s from the posterior fitted without row i.
    """
    from nadfit.fitting.inference.build import build_pymc_model
    from nadfit.fitting.inference.config import FitConfig
    from nadfit.fitting.inference.fit import sample_posterior
    from nadfit.fitting.inference.pointwise import pointwise_draws, theta_draws
    from nadfit.models.model import EvidenceModel

    cfg, evidence = run.config, run.evidence
    run.require_current_evidence()
    full = run.model()
    _, labels = full.unit_labels[PRIMARY_VAR]
    labels = list(labels)
    out = {}
    for eid in evidence_ids:
        reduced = EvidenceModel(cfg.hypothesis, evidence, cfg.settings(), exclude=(eid,))
        sub = FitConfig(hypothesis=cfg.hypothesis, draws=draws, tune=tune, chains=chains, seed=cfg.seed,
                        widen_priors=cfg.widen_priors, observation=cfg.observation)
        dt = sample_posterior(build_pymc_model(reduced, widen=cfg.widen_priors), sub)
        ll = pointwise_draws(full, theta_draws(dt["posterior"], full))[PRIMARY_VAR][:, labels.index(eid)]
        out[eid] = exact_elpd(ll.reshape(chains, -1))[0]
        log(f"exact LOO refit {cfg.hypothesis} without {eid}: elpd {out[eid]:.3f}")
    return out


def load_comparison(folder) -> dict:
    """``comparison.json`` of a complete comparison folder (schema checked)."""
    folder = check_run_dir(Path(folder), kind="comparison")
    comp = read_json(folder / "comparison.json", "comparison.json")
    if comp.get("schema") != COMPARISON_SCHEMA:
        raise UserError(f"comparison was written by an incompatible nadfit version (schema "
                        f"{comp.get('schema')!r}, expected {COMPARISON_SCHEMA!r})",
                        file=str(folder / "comparison.json"))
    return comp


def run_statuses(comp: dict, folder: Path) -> list[dict]:
    """One entry per compared run for the comparison report: status, fingerprint and warnings
    (run missing, gates failed, shipped evidence changed since the fit)."""
    from nadfit.reports.render import evidence_change

    out = []
    for h, d in (comp.get("runs") or {}).items():
        entry = {"hypothesis": h, "dir": str(d), "status": None, "fingerprint": None, "warnings": []}
        p = Path(d)
        if not p.is_absolute() and (folder / p).exists():
            p = folder / p
        try:
            run = load_run(p, posterior=False)
        except UserError as err:
            entry["status"] = f"unavailable ({err})"
            out.append(entry)
            continue
        entry["status"] = run.summary.get("status")
        entry["fingerprint"] = run.summary.get("evidence_fingerprint")
        w = evidence_change(run)
        if w:
            entry["warnings"].append(f"{h}: {w}")
        if entry["status"] != "ok":
            entry["warnings"].append(f"{h}: run status is {entry['status']!r} (convergence gates failed)")
        out.append(entry)
    return out
