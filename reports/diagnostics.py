"""Sampler diagnostics the run report shows and its top banner summarises.

Rank-ECDF uniformity (do the chains sample the same distribution?)
------------------------------------------------------------------
For each scalar parameter the draws of all chains are pooled and ranked; if the chains sample
the same distribution, the ranks of any one chain are a random subset of the pooled ranks. The
test is the graphical uniformity test of Säilynoja, Bürkner & Vehtari (2022, Statistics and
Computing 32:32) for several chains:

* each chain is thinned to roughly independent draws first (factor = draws per chain / that
  chain's own bulk ESS, so chains stuck in different regions keep their draws and the test keeps
  its power), because the null distribution below assumes exchangeable draws;
* at every evaluation point z_j (a grid of at most ``MAX_POINTS``) the number of a chain's draws among the pooled ⌈z_j·N⌉
  lowest is hypergeometric under the null; the statistic is the smallest two-sided tail
  probability over all chains and points;
* its null distribution is simulated by permuting the chain labels (it depends only on the
  numbers of chains and draws, so it is cached); the p-value is the share of permutations at
  least as extreme, and the simultaneous (1 − α) envelope is the set of counts whose tail
  probability exceeds the α-quantile of the null statistic. A chain's ECDF line leaves the
  drawn envelope exactly when p ≤ α: the figure and the banner cannot disagree.

ArviZ's default multi-chain test (``mchain_uniformity_test``) is not used for the decision: with
two chains it returned p ≈ 1 for 600 independent draws per chain whose means differ by 0.3 SD.

E-BFMI per chain (Betancourt 2016): below 0.3 flags poor exploration of the energy distribution.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

#: level of the simultaneous envelope and of the per-parameter test
RANK_ALPHA = 0.01
#: permutations for the null distribution (p-values resolve to 1/(N_PERM + 1))
N_PERM = 1000
#: at most this many evaluation points (the ECDF is evaluated on a grid, the draws are not thinned for it)
MAX_POINTS = 200
BFMI_MIN = 0.3


def bfmi(energy) -> list[float] | None:
    """E-BFMI per chain from the (chain, draw) energy array (None when absent)."""
    if energy is None:
        return None
    e = np.asarray(energy, dtype=float)
    if e.ndim == 1:
        e = e[None, :]
    return [float(np.sum(np.diff(row) ** 2) / max(np.sum((row - row.mean()) ** 2), 1e-300)) for row in e]


def _chain_ess(x: np.ndarray) -> np.ndarray:
    """Bulk ESS of each chain on its own ((chain, draw) -> (chain,))."""
    from arviz_stats.base import array_stats

    try:
        ess = np.asarray(array_stats.ess(x, chain_axis=None, draw_axis=-1), dtype=float)
    except Exception:  # noqa: BLE001 — a constant chain has no ESS; treat its draws as independent
        return np.full(x.shape[0], float(x.shape[1]))
    return np.where(np.isfinite(ess) & (ess > 0), ess, float(x.shape[1]))


@lru_cache(maxsize=64)
def _tail_tables(n_total: int, n_chain: int, n_points: int):
    """Evaluation counts k_j and hypergeometric lower/upper tail probabilities for every count."""
    from scipy.stats import hypergeom

    k = np.unique(np.clip(np.round(np.arange(1, n_points) / n_points * n_total).astype(int), 1, n_total - 1))
    s = np.arange(n_chain + 1)
    lo = hypergeom.cdf(s[None, :], n_total, n_chain, k[:, None])          # P(X <= s)
    hi = hypergeom.sf(s[None, :] - 1, n_total, n_chain, k[:, None])       # P(X >= s)
    return k, np.minimum(np.minimum(lo, hi) * 2, 1.0)


def _statistic(labels: np.ndarray, n_chains: int, k: np.ndarray, tail: np.ndarray) -> np.ndarray:
    """Smallest two-sided tail probability over chains and evaluation points.

    ``labels``: (..., N) chain index of the pooled draws in rank order. Returns (...,)."""
    out = None
    for c in range(n_chains):
        counts = np.cumsum(labels == c, axis=-1)[..., k - 1]             # (..., K)
        p = tail[np.arange(k.size), counts]
        m = p.min(axis=-1)
        out = m if out is None else np.minimum(out, m)
    return out


@lru_cache(maxsize=64)
def _null(n_chains: int, n_chain: int, n_points: int, seed: int = 20221) -> np.ndarray:
    """Permutation null distribution of the statistic (sorted)."""
    n_total = n_chains * n_chain
    k, tail = _tail_tables(n_total, n_chain, n_points)
    rng = np.random.default_rng(seed)
    base = np.repeat(np.arange(n_chains), n_chain)
    stats = []
    for start in range(0, N_PERM, 250):
        b = min(250, N_PERM - start)
        labels = rng.permuted(np.broadcast_to(base, (b, n_total)), axis=1)
        stats.append(_statistic(labels, n_chains, k, tail))
    return np.sort(np.concatenate(stats))


def rank_uniformity(x, alpha: float = RANK_ALPHA) -> dict:
    """Multi-chain rank-ECDF uniformity test of one parameter's (chain, draw) draws.

    Returns ``p`` (permutation p-value), ``passed`` (p > alpha), ``thin`` (thinning factor),
    ``n`` (draws per chain used), ``x`` (evaluation points), ``ecdf_diff`` (chain, point)
    ECDF minus uniform, ``lower``/``upper`` (the simultaneous envelope, same units) and
    ``outside`` (a chain leaves the envelope somewhere)."""
    x = np.asarray(x, dtype=float)
    n_chains, n_draws = x.shape
    if n_chains < 2 or n_draws < 8 or not np.isfinite(x).all():
        return {"p": None, "passed": None, "reason": "needs two or more chains of finite draws"}
    if np.ptp(x) == 0:
        return {"p": None, "passed": None, "reason": "constant draws"}
    thin = max(1, round(n_draws / max(float(np.min(_chain_ess(x))), 1.0)))
    xt = x[:, ::thin]
    n = xt.shape[1]
    if n < 8:
        thin = max(1, n_draws // 8)
        xt = x[:, ::thin]
        n = xt.shape[1]
    n_total = n_chains * n
    order = np.argsort(xt.reshape(-1), kind="stable")
    labels = np.repeat(np.arange(n_chains), n)[order]
    n_points = min(n, MAX_POINTS)
    k, tail = _tail_tables(n_total, n, n_points)
    obs = float(_statistic(labels, n_chains, k, tail))
    null = _null(n_chains, n, n_points)
    p = (1 + int(np.searchsorted(null, obs, side="right"))) / (len(null) + 1)
    # p <= alpha  <=>  obs < null[m]: the envelope is the counts whose tail probability is >= null[m]
    m = max(int(math.floor(alpha * (len(null) + 1))) - 1, 0)
    gamma = float(null[m])
    z = k / n_total
    inside = tail >= gamma                                               # (K, n+1) counts inside
    s = np.arange(n + 1)
    lower = np.array([s[row].min() if row.any() else 0 for row in inside]) / n - z
    upper = np.array([s[row].max() if row.any() else n for row in inside]) / n - z
    diffs = np.stack([np.cumsum(labels == c)[k - 1] / n - z for c in range(n_chains)])
    outside = bool(obs < gamma)
    return {"p": p, "passed": not outside, "thin": thin, "n": n, "x": z, "ecdf_diff": diffs,
            "lower": lower, "upper": upper, "outside": outside, "alpha": alpha}


#: level of the LOO-PIT envelope (a handful of rows: a wide band)
PIT_ALPHA = 0.05
PIT_POINTS = 100


@lru_cache(maxsize=64)
def _pit_null(n: int, seed: int = 20222) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid, binomial two-sided tail table (point, count) and the sorted null statistic."""
    from scipy.stats import binom

    z = np.arange(1, PIT_POINTS) / PIT_POINTS
    s = np.arange(n + 1)
    tail = np.minimum(2 * np.minimum(binom.cdf(s[None, :], n, z[:, None]), binom.sf(s[None, :] - 1, n, z[:, None])), 1.0)
    rng = np.random.default_rng(seed)
    u = np.sort(rng.uniform(size=(N_PERM, n)), axis=1)
    counts = np.stack([np.searchsorted(row, z, side="right") for row in u])           # (B, K)
    null = tail[np.arange(z.size)[None, :], counts].min(axis=1)
    return z, tail, np.sort(null)


def pit_uniformity(values, alpha: float = PIT_ALPHA) -> dict:
    """Uniformity of PIT values (LOO-PIT) with a simultaneous envelope of the ECDF
    (Säilynoja et al. 2022, single sample: binomial tails, null simulated from uniforms).

    Returns ``p``, ``passed``, ``n``, ``x`` (grid), ``ecdf_diff``, ``lower``, ``upper`` (ECDF
    minus uniform) and ``values``; ``passed`` is None for fewer than 2 values."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    n = v.size
    if n < 2:
        return {"p": None, "passed": None, "n": n, "values": v.tolist(), "reason": "fewer than two numeric rows"}
    z, tail, null = _pit_null(n)
    counts = np.searchsorted(np.sort(v), z, side="right")
    obs = float(tail[np.arange(z.size), counts].min())
    p = (1 + int(np.searchsorted(null, obs, side="right"))) / (len(null) + 1)
    m = max(int(math.floor(alpha * (len(null) + 1))) - 1, 0)
    gamma = float(null[m])
    inside = tail >= gamma
    s = np.arange(n + 1)
    lower = np.array([s[row].min() if row.any() else 0 for row in inside]) / n - z
    upper = np.array([s[row].max() if row.any() else n for row in inside]) / n - z
    return {"p": p, "passed": not obs < gamma, "n": n, "x": z, "ecdf_diff": counts / n - z,
            "lower": lower, "upper": upper, "values": v.tolist(), "alpha": alpha}
