"""Assembling ``comparison.json``: statistical comparison of the NMN-uptake hypotheses.

What it computes from fitted run folders (all hypotheses fitted to the same evidence rows):

* PSIS-LOO over evidence rows (ArviZ ``loo``) per hypothesis, ELPD differences with standard
  errors and stacking weights (``az.compare(method="stacking")``), Pareto-k diagnostics. Rows with
  k > 0.7 are listed and, with ``refit_bad_k``, re-scored by exact leave-one-out refits.
* Pointwise attribution: per-row and per-study ELPD for every hypothesis (sums equal totals).
* Leave-one-study-out: PSIS on study-grouped log-likelihoods (a study is the exchangeable unit);
  studies whose grouped k > 0.7 are flagged (exact refits with ``refit_bad_k``).
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
from nadfit.fitting.inference.runs import REQUIRED_GROUPS, check_run_dir, load_run
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
    x = float(x)
    return None if not math.isfinite(x) else float(f"{x:.{d}g}")


def load_runs(run_dirs: list[Path], allow_failed: bool = False) -> dict:
    """Load and cross-check runs: one per hypothesis, same evidence rows, usable status."""
    if len(run_dirs) < 2:
        raise UserError("compare needs at least two run folders", field="RUN_DIR")
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
            raise UserError("run failed its diagnostics gates; refit it or pass --allow-failed", file=str(d))
        key = (tuple(summary["evidence_ids"]), summary["evidence_fingerprint"])
        if ref is None:
            ref = (key, d)
        elif key != ref[0]:
            raise UserError(f"run was fitted to different evidence than {ref[1]} "
                            "(evidence rows or values differ); refit both on the same evidence", file=str(d))
        runs[h] = run
    return runs


def pointwise_loglik(dt) -> np.ndarray:
    """(chain, draw, item) pointwise log-likelihood."""
    return dt["log_likelihood"]["evidence"].transpose("chain", "draw", "evidence_id").values


def _raw_is_elpd(flat: np.ndarray) -> np.ndarray:
    """Plain importance-sampling LOO: -log mean_s exp(-ll_s) per column of (sample, unit)."""
    x = -flat
    m = x.max(axis=0)
    return -(m + np.log(np.mean(np.exp(x - m), axis=0)))


def psis_loo(ll: np.ndarray) -> dict:
    """PSIS-LOO on a (chain, draw, unit) array via ArviZ; returns pointwise elpd and Pareto k.

    Units whose log-likelihood varies by at most ``CONSTANT_LL_TOL`` nats over the draws (e.g. a
    finding that depends only on a share fixed by the hypothesis) are ``exact``: their LOO
    density is known to that precision without smoothing (see ``CONSTANT_LL_TOL``); their k is
    0 in ``k`` and they never count as unreliable. Units where Pareto smoothing fails or k
    cannot be estimated (NaN) fall back to plain importance sampling, are flagged
    ``not_estimable`` and get k = inf, so that they count as unreliable (k > 0.7) everywhere.

    Returns ``elpd``, ``se``, ``p_loo``, ``elpd_i``, ``k``, ``exact``, ``not_estimable``
    (``raw_is`` is kept as an alias of ``not_estimable``).
    """
    import arviz as az
    import xarray as xr

    n = ll.shape[-1]
    flat = ll.reshape(-1, n)
    constant = np.ptp(flat, axis=0) <= CONSTANT_LL_TOL
    elpd_i = np.where(constant, _raw_is_elpd(flat), np.nan)
    k = np.zeros(n)
    p_loo = 0.0
    raw_is = np.zeros(n, dtype=bool)

    def _az_loo(cols):
        import warnings

        sub = ll[..., cols]
        ds = xr.Dataset({"y": (("chain", "draw", "unit"), sub)})
        dt = xr.DataTree.from_dict({"log_likelihood": ds,
                                    "posterior": xr.Dataset({"dummy": (("chain", "draw"), np.zeros(ll.shape[:2]))})})
        with warnings.catch_warnings():
            # one unit at a time is intended here (the fallback below, or a single non-exact
            # unit): ArviZ's check that pointwise LOO differs from the sum does not apply
            warnings.filterwarnings("ignore", message="The point-wise LOO is the same with the sum LOO")
            # every unit's k is returned here and reported (counted, flagged, plotted) by the
            # callers; ArviZ's generic advice would repeat it once per call without the row
            warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto distribution")
            return az.loo(dt, pointwise=True, var_name="y")

    cols = np.where(~constant)[0]
    if cols.size:
        try:
            res = _az_loo(cols)
            elpd_i[cols] = np.asarray(res.elpd_i).ravel()
            k[cols] = np.asarray(res.pareto_k).ravel()
            p_loo = float(res.p)
        except ValueError:
            # Pareto smoothing fails when a unit's largest importance ratios are tied (a
            # finding whose likelihood sits on its floor for many draws); such ratios are
            # bounded, so plain importance sampling is used for that unit and it is flagged
            for c in cols:
                try:
                    r = _az_loo(np.array([c]))
                    elpd_i[c] = float(np.asarray(r.elpd_i).ravel()[0])
                    k[c] = float(np.asarray(r.pareto_k).ravel()[0])
                except ValueError:
                    elpd_i[c] = float(_raw_is_elpd(flat[:, [c]])[0])
                    raw_is[c] = True
            lpd = np.log(np.mean(np.exp(flat - flat.max(0)), axis=0)) + flat.max(0)
            p_loo = float(np.sum(lpd[cols] - elpd_i[cols]))
        nan_k = ~constant & ~np.isfinite(k)
        for c in np.where(nan_k)[0]:
            elpd_i[c] = float(_raw_is_elpd(flat[:, [c]])[0])
        raw_is |= nan_k
        k[raw_is] = np.inf
    return {"elpd": float(elpd_i.sum()), "se": float(np.sqrt(n * np.var(elpd_i))),
            "p_loo": p_loo, "elpd_i": elpd_i, "k": k, "exact": constant, "not_estimable": raw_is,
            "raw_is": raw_is}


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


def loo_pit(dt) -> dict | None:
    """LOO-PIT of the numeric rows: P(y_rep_i <= y_i | all rows but i), importance-weighted
    (``arviz_stats.loo_pit``). Uniform when the predictive distributions are calibrated.

    ``{"evidence_id": [...], "pit": [...]}`` for the rows with a reported value and finite
    replicated draws; None when the run has no posterior predictive ``y_rep``."""
    if "posterior_predictive" not in dt.children or "y_rep" not in dt["posterior_predictive"].data_vars:
        return None
    import warnings

    import arviz_stats as azs
    import xarray as xr

    yrep = dt["posterior_predictive"]["y_rep"].transpose("chain", "draw", "evidence_id")
    obs = dt["observed_data"]["value"] if "value" in dt["observed_data"].data_vars else None
    if obs is None:
        return None
    ok = np.isfinite(yrep.values).all(axis=(0, 1)) & np.isfinite(obs.values)
    if not ok.any():
        return {"evidence_id": [], "pit": []}
    ll = dt["log_likelihood"]["evidence"].transpose("chain", "draw", "evidence_id").values[..., ok]
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
    return {"evidence_id": [str(e) for e in obs["evidence_id"].values[ok]], "pit": [_r(x, 4) for x in pit]}


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
                     sensitivity: dict | None = None, refits: dict | None = None) -> dict:
    names = list(runs)
    first = next(iter(runs.values()))
    ids = first.summary["evidence_ids"]
    study_of = dict(zip(first.dt["observed_data"]["evidence_id"].values.astype(str),
                        first.dt["observed_data"]["study_id"].values.astype(str)))
    loo = {}
    ll = {}
    for h, r in runs.items():
        ll[h] = pointwise_loglik(r.dt)
        loo[h] = psis_loo(ll[h])
    # exact refits replace PSIS values where given: refits[h][evidence_id] = elpd
    refitted = {h: set(per) for h, per in (refits or {}).items()}
    for h, per in (refits or {}).items():
        for eid, val in per.items():
            i = ids.index(eid)
            loo[h]["elpd_i"][i] = val
            loo[h]["k"][i] = 0.0
            loo[h]["not_estimable"][i] = False
        loo[h]["elpd"] = float(loo[h]["elpd_i"].sum())
        loo[h]["se"] = float(np.sqrt(len(ids) * np.var(loo[h]["elpd_i"])))
    weights = stacking_weights({h: loo[h]["elpd_i"] for h in names}, ll)
    order = sorted(names, key=lambda h: -loo[h]["elpd"])
    best = order[0]
    ranking = []
    for rank, h in enumerate(order):
        diff = loo[best]["elpd_i"] - loo[h]["elpd_i"]
        ranking.append({"hypothesis": h, "rank": rank, "elpd": _r(loo[h]["elpd"]),
                        "elpd_diff": _r(diff.sum()), "dse": _r(math.sqrt(len(diff) * np.var(diff))),
                        "weight": _r(weights[h])})
    pointwise = []
    status = {h: loo_status(loo[h]) for h in names}
    labels = row_labels(ids)
    for i, eid in enumerate(ids):
        pointwise.append({"evidence_id": eid, "study_id": study_of.get(eid, ""), "label": labels.get(eid, eid),
                          "elpd": {h: _r(loo[h]["elpd_i"][i]) for h in names},
                          "pareto_k": {h: _k_json(loo[h], i) for h in names},
                          "loo_status": {h: ("exact_refit" if eid in refitted.get(h, ()) else status[h][i])
                                         for h in names}})
    studies = sorted(set(study_of[e] for e in ids), key=lambda s: ids.index(next(e for e in ids if study_of[e] == s)))
    by_study = []
    for s in studies:
        idx = [i for i, e in enumerate(ids) if study_of[e] == s]
        by_study.append({"study_id": s, "n_rows": len(idx),
                         "elpd": {h: _r(loo[h]["elpd_i"][idx].sum()) for h in names}})
    # leave-one-study-out by PSIS on study-grouped log-likelihoods
    loso = {}
    for h in names:
        grouped = np.stack([ll[h][..., [i for i, e in enumerate(ids) if study_of[e] == s]].sum(-1) for s in studies], -1)
        res = psis_loo(grouped)
        st = loo_status(res)
        loso[h] = {"elpd": _r(res["elpd"]), "se": _r(res["se"]),
                   "per_study": {s: {"elpd": _r(res["elpd_i"][j]), "pareto_k": _k_json(res, j), "loo_status": st[j]}
                                 for j, s in enumerate(studies)},
                   "n_bad_k": int(np.sum(res["k"] > BAD_K))}
    loo_out = {}
    for h in names:
        kk = loo[h]["k"]
        usable = ~loo[h]["exact"] & np.isfinite(kk)
        loo_out[h] = {"elpd": _r(loo[h]["elpd"]), "se": _r(loo[h]["se"]), "p_loo": _r(loo[h]["p_loo"]),
                      # rows whose PSIS estimate is unreliable: k > 0.7 or k not estimable (never exact rows)
                      "n_bad_k": int(np.sum(kk > BAD_K)),
                      "k_max": _r(np.max(kk[usable]), 3) if usable.any() else None,
                      "bad_k_rows": [ids[i] for i in np.where(kk > BAD_K)[0]],
                      "n_exact": int(loo[h]["exact"].sum()),
                      "exact_rows": [ids[i] for i in np.where(loo[h]["exact"])[0]],
                      "k_not_estimable_rows": [ids[i] for i in np.where(loo[h]["not_estimable"])[0]]}
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
    out = {
        "schema": COMPARISON_SCHEMA,
        "runs": {h: str(r.dir) for h, r in runs.items()},
        "evidence_fingerprint": first.summary["evidence_fingerprint"],
        "n_rows": len(ids),
        "loo": loo_out,
        "ranking": ranking,
        "stacking_weights": {h: _r(w) for h, w in weights.items()},
        "pointwise": pointwise,
        "by_study": by_study,
        "loso": loso,
        "smc": smc,
        "bridge": bridge,
        "ml_agreement": {h: ml_agreement((smc or {}).get(h), (bridge or {}).get(h)) for h in names
                         if (smc or {}).get(h) or (bridge or {}).get(h)},
        "bayes_factors": bayes_factors,
        "sensitivity": sensitivity,
        "phi_share": phi_shares(runs["mixed"].dt) if "mixed" in runs else None,
        "run_status": {h: r.summary.get("status") for h, r in runs.items()},
        "loo_pit": {h: loo_pit(r.dt) for h, r in runs.items()},
    }
    out["verdict_parts"] = verdict(out)
    out["verdict"] = verdict_text(out["verdict_parts"])
    return out


def attribution_drivers(cmp: dict, h_best: str, h_other: str, k: int = 3) -> tuple[list, list]:
    """Studies that most favour h_best over h_other, and those that most favour h_other."""
    diffs = [(s["study_id"], (s["elpd"][h_best] or 0) - (s["elpd"][h_other] or 0)) for s in cmp["by_study"]]
    pro = [d for d in sorted(diffs, key=lambda x: -x[1]) if d[1] > 0.1][:k]
    con = [d for d in sorted(diffs, key=lambda x: x[1]) if d[1] < -0.1][:k]
    return pro, con


#: |ΔELPD| / SE above which a difference is called clear, and above which modest (below: not decided)
Z_CLEAR, Z_MODEST = 4.0, 2.0


def _z(r: dict) -> float:
    return (r["elpd_diff"] / r["dse"]) if r.get("dse") else float("inf")


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
    if not others:
        headline = f"Only '{best}' was compared."
    elif not ahead:
        headline = (f"No hypothesis is preferred: PSIS-LOO ranks '{best}' first, but every difference is within "
                    f"{Z_MODEST:g} standard errors.")
    elif not tied:
        strength = "clearly" if all(_z(r) > Z_CLEAR for r in ahead) else "modestly"
        headline = f"'{best}' is preferred: it predicts the evidence {strength} better than {_names(r['hypothesis'] for r in ahead)}."
    else:
        headline = (f"{_names([best] + [r['hypothesis'] for r in tied])} cannot be told apart by PSIS-LOO; "
                    f"{_names(r['hypothesis'] for r in ahead)} predict{'s' if len(ahead) == 1 else ''} the evidence worse.")
    points = []
    for r in ahead:
        strength = "clearly" if _z(r) > Z_CLEAR else "modestly"
        points.append({"aspect": "decided", "text":
                       f"'{best}' predicts the evidence {strength} better than '{r['hypothesis']}': "
                       f"ΔELPD {r['elpd_diff']:.1f} ± {r['dse']:.1f} ({_z(r):.1f} SE)."})
    for r in tied:
        text = (f"'{best}' vs '{r['hypothesis']}': ΔELPD {r['elpd_diff']:.1f} ± {r['dse']:.1f} ({_z(r):.1f} SE), "
                f"within noise.")
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
    # PSIS reliability
    bad = {h: v["n_bad_k"] for h, v in cmp["loo"].items() if v.get("n_bad_k")}
    exact = {h: v.get("n_exact", 0) for h, v in cmp["loo"].items() if v.get("n_exact")}
    n_rows = cmp.get("n_rows")
    if bad:
        text = ("PSIS-LOO is unreliable (Pareto k > 0.7 or not estimable) for " +
                ", ".join(f"{n} row(s) of {h}" for h, n in bad.items()) +
                (f" out of {n_rows}" if n_rows else "") + ".")
        if cmp.get("reloo"):
            text += " Exact refits replaced PSIS for " + ", ".join(
                f"{len(v)} row(s) of {h}" for h, v in cmp["reloo"].items() if v) + "."
        else:
            text += " Exact refits (--reloo) were not run; leave-one-study-out is the cross-check."
        provisional.append("PSIS-LOO unreliable for some rows")
    else:
        text = "PSIS-LOO is reliable for every row (Pareto k ≤ 0.7)."
        if cmp.get("reloo"):
            text += " Exact refits replaced PSIS for " + ", ".join(
                f"{len(v)} row(s) of {h}" for h, v in cmp["reloo"].items() if v) + "."
    if exact:
        text += (" Rows with a constant log-likelihood are exact and not counted: "
                 + ", ".join(f"{n} of {h}" for h, n in exact.items()) + ".")
    points.append({"aspect": "robustness", "text": text})
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
    if provisional:
        headline += " Provisional: " + "; ".join(provisional) + "."
    return {"headline": headline, "provisional": provisional, "points": points}


def verdict_text(v: dict) -> str:
    """The verdict as plain text for terminals and ``comparison.json``'s ``verdict``."""
    return v["headline"] + "".join(f"\n  • {p['aspect']}: {p['text']}" for p in v["points"])


def exact_refit_elpd(run, evidence_ids: list[str], draws: int = 300, tune: int = 300, chains: int = 2,
                     log=print) -> dict[str, float]:
    """Exact leave-one-out for the given rows: refit without the row, score it on the refit draws.

    elpd_i = log mean_s p(row_i | theta_s), theta_s from the posterior fitted without row i.
    """
    import jax
    import jax.numpy as jnp

    from nadfit.fitting.inference.build import build_pymc_model
    from nadfit.fitting.inference.config import FitConfig
    from nadfit.fitting.inference.fit import sample_posterior
    from nadfit.models.model import EvidenceModel

    cfg, evidence = run.config, run.evidence
    run.require_current_evidence()
    full = run.model()
    names = list(full.scalar_parameters) + list(full.vector_parameters)
    ll_fn = jax.jit(jax.vmap(lambda th: full.loglik_and_pred(th)[0]))
    out = {}
    for eid in evidence_ids:
        reduced = EvidenceModel(cfg.hypothesis, evidence, cfg.settings(), exclude=(eid,))
        sub = FitConfig(hypothesis=cfg.hypothesis, draws=draws, tune=tune, chains=chains, seed=cfg.seed,
                        widen_priors=cfg.widen_priors, observation=cfg.observation)
        dt = sample_posterior(build_pymc_model(reduced, widen=cfg.widen_priors), sub)
        post = dt["posterior"]
        th = {k: jnp.asarray(post[k].stack(s=("chain", "draw")).transpose("s", ...).values) for k in names}
        ll = np.asarray(ll_fn(th))[:, full.evidence_ids.index(eid)]
        m = ll.max()
        out[eid] = float(m + np.log(np.mean(np.exp(ll - m))))
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
