"""Statistics of the calibration studies (pure numpy/scipy; no fitting): Wilson intervals of a
rate, the SBC uniformity decision with its multiplicity rule, interval coverage counting, the
Bayes-factor calibration check (Schad et al. 2022) and the pre-fit identifiability forecast.

Every function here is exercised by fast unit tests (tests/fitting/test_calibration_stats.py).
"""

from __future__ import annotations

import math

import numpy as np

#: level of the Wilson intervals of rates (confusion matrix, coverage)
WILSON_LEVEL = 0.95
#: family-wise level of the SBC uniformity decision (Bonferroni over the ranked quantities)
SBC_ALPHA = 0.01
#: central predictive intervals whose coverage is counted (out-of-study coverage)
COVERAGE_PROBS = (0.5, 0.9)
#: Bayes-factor calibration: |mean posterior probability - prior probability| is compared with
#: this many Monte Carlo standard errors (two-sided ~99 %)
BF_Z = 2.576
#: a parameter counts as identifiable when the forecast posterior contraction is at least this
IDENTIFIABLE_CONTRACTION = 0.5


# ---------------------------------------------------------------------------------------------
# rates
# ---------------------------------------------------------------------------------------------
def wilson_interval(k: int, n: int, level: float = WILSON_LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k / n (Wilson 1927). (nan, nan) for n = 0."""
    from scipy import stats

    if n <= 0:
        return float("nan"), float("nan")
    if not 0 <= k <= n:
        raise ValueError(f"k = {k} outside 0..{n}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(k: int, n: int, level: float = WILSON_LEVEL) -> dict:
    lo, hi = wilson_interval(k, n, level)
    return {"k": int(k), "n": int(n), "rate": (k / n) if n else None,
            "low": None if n == 0 else round(lo, 4), "high": None if n == 0 else round(hi, 4), "level": level}


def confusion_summary(picks: list[tuple[str, str]], hypotheses: list[str], level: float = WILSON_LEVEL) -> dict:
    """``picks``: (generating, picked) pairs. Counts, row rates with Wilson intervals, and the
    overall recovery rate (diagonal share)."""
    counts = {g: {h: 0 for h in hypotheses} for g in hypotheses}
    for g, h in picks:
        counts[g][h] += 1
    rows = {}
    for g in hypotheses:
        n = sum(counts[g].values())
        rows[g] = {h: rate(counts[g][h], n, level) for h in hypotheses}
    n_all = len(picks)
    correct = sum(counts[g][g] for g in hypotheses)
    return {"labels": list(hypotheses), "counts": counts, "rates": rows,
            "matrix": [[counts[g][h] for h in hypotheses] for g in hypotheses],
            "recovery": rate(correct, n_all, level),
            "per_hypothesis_recovery": {g: rows[g][g] for g in hypotheses}}


# ---------------------------------------------------------------------------------------------
# SBC uniformity decision
# ---------------------------------------------------------------------------------------------
def uniformity_decision(p_values: dict[str, float], alpha: float = SBC_ALPHA) -> dict:
    """Bonferroni: quantity passes when ``p >= alpha / K`` (K ranked quantities), so a correct
    posterior computation fails *any* quantity with probability <= alpha."""
    k = max(1, len(p_values))
    threshold = alpha / k
    passed = {lab: bool(p is not None and math.isfinite(p) and p >= threshold) for lab, p in p_values.items()}
    return {"alpha": alpha, "k": k, "threshold": threshold, "passed": passed,
            "failed": [lab for lab, ok in passed.items() if not ok], "all_pass": bool(all(passed.values())),
            "rule": f"chi-square uniformity p >= {alpha} / {k} quantities (Bonferroni) = {threshold:.3g}"}


def fractional_ranks(ranks, rank_draws: int, seed: int = 0) -> np.ndarray:
    """Discrete ranks 0..L made continuous uniform under the null: (r + U) / (L + 1), U ~ U(0, 1)
    from a fixed seed (for the ECDF-difference plot and its simultaneous band)."""
    r = np.asarray(ranks, dtype=float)
    u = np.random.default_rng(seed).uniform(size=r.shape)
    return (r + u) / (rank_draws + 1)


# ---------------------------------------------------------------------------------------------
# coverage
# ---------------------------------------------------------------------------------------------
def central_interval(draws, prob: float) -> tuple[float, float]:
    lo, hi = np.quantile(np.asarray(draws, dtype=float), [(1 - prob) / 2, 1 - (1 - prob) / 2])
    return float(lo), float(hi)


def covers(draws, value: float, probs=COVERAGE_PROBS) -> dict:
    """Whether the central ``prob`` predictive intervals of ``draws`` contain ``value``, and the
    PIT (share of draws below the value)."""
    d = np.asarray(draws, dtype=float)
    d = d[np.isfinite(d)]
    out = {"pit": float(np.mean(d < value)) if d.size else None}
    for p in probs:
        lo, hi = central_interval(d, p) if d.size else (float("nan"), float("nan"))
        out[f"covered_{round(100 * p)}"] = bool(lo <= value <= hi) if d.size else None
        out[f"low_{round(100 * p)}"], out[f"high_{round(100 * p)}"] = lo, hi
    return out


def coverage_table(rows: list[dict], probs=COVERAGE_PROBS, group: str = "study", level: float = WILSON_LEVEL) -> dict:
    """Counts covered rows per ``group`` value and overall for each interval probability.
    ``rows``: dicts with ``group`` and ``covered_50``/``covered_90`` (None = not computed)."""
    groups = list(dict.fromkeys(r[group] for r in rows))
    out = {"by": group, "probs": list(probs), "groups": {}, "overall": {}}
    for p in probs:
        key = f"covered_{round(100 * p)}"
        ok = [r for r in rows if r.get(key) is not None]
        out["overall"][key] = rate(sum(bool(r[key]) for r in ok), len(ok), level)
    for g in groups:
        mine = [r for r in rows if r[group] == g]
        out["groups"][g] = {}
        for p in probs:
            key = f"covered_{round(100 * p)}"
            ok = [r for r in mine if r.get(key) is not None]
            out["groups"][g][key] = rate(sum(bool(r[key]) for r in ok), len(ok), level)
    return out


# ---------------------------------------------------------------------------------------------
# Bayes-factor calibration (Schad, Nicenboim, Bürkner, Betancourt & Vasishth 2022)
# ---------------------------------------------------------------------------------------------
def posterior_model_probs(elpd: dict[str, float], prior: dict[str, float]) -> dict[str, float]:
    """p(M | y) ∝ p(M) exp(score_M) for scores on the log scale (elpd_loo: pseudo-BMA with prior
    model probabilities; a log marginal likelihood: exact Bayes)."""
    names = list(prior)
    s = np.array([elpd[h] for h in names], dtype=float) + np.log([prior[h] for h in names])
    s -= s.max()
    w = np.exp(s)
    w /= w.sum()
    return {h: float(x) for h, x in zip(names, w)}


def bf_calibration(records: list[dict], prior: dict[str, float], z: float = BF_Z) -> dict:
    """``records``: dicts with ``generating`` (drawn from ``prior``) and ``probs`` (posterior
    model probabilities of every hypothesis). If the probabilities are calibrated,
    E[p(M | y)] = p(M) (averaging over the prior predictive; Schad et al. 2022, eq. 5). Reports
    the mean posterior probability with its Monte Carlo SE, the share of replicates generated
    by each hypothesis, and per hypothesis whether |mean - prior| <= z SE."""
    n = len(records)
    out = {"n": n, "prior": dict(prior), "z": z, "hypotheses": {}}
    for h, prior_h in prior.items():
        p = np.array([r["probs"][h] for r in records], dtype=float)
        # None (JSON null) where the records cannot give a value: no mean without records, no
        # SE from fewer than two (e.g. one replicate with a finite bridge estimate for every hypothesis)
        mean = float(p.mean()) if n else None
        se = float(p.std(ddof=1) / math.sqrt(n)) if n > 1 else None
        # the generating share has the same expectation: a useful second reference
        share = float(np.mean([r["generating"] == h for r in records])) if n else None
        ok = bool(abs(mean - prior_h) <= z * se) if se is not None and se > 0 else None
        out["hypotheses"][h] = {"prior": prior_h, "mean_posterior": mean, "se": se, "generated_share": share,
                                "consistent": ok}
    verdicts = [v["consistent"] for v in out["hypotheses"].values()]
    out["all_consistent"] = None if any(v is None for v in verdicts) else bool(all(verdicts))
    return out


# ---------------------------------------------------------------------------------------------
# identifiability forecast (before any fit)
# ---------------------------------------------------------------------------------------------
def main_effect_variance(x, y, bins: int = 20) -> float:
    """First-order (main-effect) variance Var(E[y | x]) estimated by quantile bins of x, with the
    within-bin sampling variance of the bin means removed (never below 0)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 * bins:
        bins = max(2, x.size // 5)
    order = np.argsort(x, kind="stable")
    groups = np.array_split(y[order], bins)
    means = np.array([g.mean() for g in groups])
    sizes = np.array([g.size for g in groups], dtype=float)
    within = np.array([g.var(ddof=1) if g.size > 1 else 0.0 for g in groups])
    w = sizes / sizes.sum()
    grand = float(np.sum(w * means))
    between = float(np.sum(w * (means - grand) ** 2))
    noise = float(np.sum(w * within / sizes))
    return max(0.0, between - noise)


def forecast_contraction(main_effect_sd: float) -> float:
    """Contraction forecast from the main-effect SD (nats) of the log-likelihood over the prior.

    Gaussian reference: prior N(0, s_p^2), likelihood exp(-(theta - theta0)^2 / (2 s_l^2)); with
    r = s_p^2 / s_l^2 the log-likelihood's SD over the prior is r / sqrt(2) (theta0 at the prior
    mean) and the posterior contraction 1 - var_post / var_prior is r / (1 + r). So
    r = sqrt(2) * SD and the contraction forecast is r / (1 + r); contraction 0.5 <=> SD = 0.71 nat."""
    r = math.sqrt(2.0) * max(0.0, float(main_effect_sd))
    return r / (1.0 + r)
