"""Calibration of the inference: simulation-based calibration (SBC, also as a sweep task kind) and
parameter recovery.

Both run the *real* pipeline on synthetic evidence: parameters ``theta`` are chosen, every scored
evidence row's result is drawn from the observation model at ``theta``
(``EvidenceModel.simulate_outcomes``) and the model is rebuilt on those results with
``EvidenceModel(h, evidence, outcomes=sim)`` -- the real evidence rows, their designs and
sample sizes, with the reported values replaced -- then fitted with nutpie exactly as
``nadfit fit`` does.

Parameter recovery (``run_recovery``)
    One truth (the prior median, or a fixed prior draw), one simulated data set, one fit. For each
    *key* parameter (``KEY_PARAMETERS`` present in the hypothesis) we report the 94 % central
    (equal-tailed) interval, whether it covers the truth, the truth's posterior quantile, and the
    posterior contraction ``1 - var_post / var_prior`` measured on an unconstrained scale (log for
    positive parameters, logit for (0, 1) parameters). A parameter counts as *identifiable* when the
    contraction is at least ``IDENTIFIABLE_CONTRACTION`` (0.5): the data halve its prior variance.
    Recovery passes when every identifiable key parameter is covered. Output ``DIR/recovery.json``.

Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018, arXiv:1804.06788)
    For i = 1..N: theta_i ~ prior (scalars with ``Prior.scipy().rvs``, the latent z-vectors
    ~ N(0, 1)), y_i = simulate_outcomes(theta_i), fit, and keep ``L`` posterior draws thinned
    with the effective sample size so that they are roughly independent: the chains are
    concatenated and every ``ceil(n_total / ess_min)``-th draw is kept (``ess_min`` is the smallest
    bulk ESS over all parameters of that fit), then ``L`` of those are taken evenly spaced. When the
    fit has fewer than ``L`` effective draws the ``L`` draws are taken evenly spaced from all draws
    and the simulation is listed under ``low_ess_sims`` (its ranks are slightly autocorrelated).
    The rank of theta_i among the L draws (number of draws below it, 0..L) is recorded per
    parameter; vector parameters are ranked per element (``z_het[yi2022]``). If the posterior
    computation is correct, each parameter's ranks are uniform on {0..L}.

    Uniformity test: ranks are grouped into B bins, B the largest divisor of L + 1 that is at most
    min(10, N // 5) (at least 2), so that every bin has the same probability 1/B and at least ~5
    expected counts. Pearson's chi-square with B - 1 degrees of freedom gives a p-value per
    parameter. Pass rule (Bonferroni-aware): a parameter passes when ``p >= ALPHA / K`` where K is
    the number of ranked parameters and ``ALPHA = 0.01``; so a correctly calibrated model fails
    *some* parameter with probability <= 1 %. ``sbc_ranks.png`` shows the rank histograms with the
    pointwise 99 % binomial band of a bin count (Binomial(N, 1/B)).

    Test quantities (``test_quantities=True``, used by ``nadfit calibrate``): the total
    log-likelihood of the simulated evidence and the predicted day-60 whole-blood fold change at
    600 mg/day NMN are ranked like parameters (``TEST_QUANTITIES``, labels ``T:...``).

    Parallelism: the N fits are independent tasks of the sweep engine (``nadfit.fitting.sweep.engine``), one
    result folder per simulation, resumable.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

from nadfit.datasets.errors import UserError
from nadfit.fitting.calibration.stats import SBC_ALPHA
from nadfit.fitting.inference.config import FitConfig
from nadfit.fitting.storage.outputs import SBC_SWEEP_SOURCE, atomic_dir, check_output_dir, write_json
from nadfit.models.priors import KEY_PARAMETERS

SBC_SCHEMA = "nadfit.sbc/1"
RECOVERY_SCHEMA = "nadfit.recovery/1"
IDENTIFIABLE_CONTRACTION = 0.5
RECOVERY_PROB = 0.94
ALPHA = SBC_ALPHA
MAX_BINS = 10
DEFAULT_RANK_DRAWS = 99  # L; L + 1 = 100 is divisible by 2, 4, 5 and 10 bins
#: NUTS target acceptance of calibration fits. Equal to ``nadfit fit``'s default today, but kept
#: apart from it: a calibration fit's warm-up is short, and a high target keeps its trees from
#: diverging when the step size is adapted from few iterations, whatever ``fit`` defaults to
CALIBRATION_TARGET_ACCEPT = 0.95
#: size of a calibration fit (SBC, recovery, calibrate's studies) unless a run chooses another
CALIBRATION_DRAWS = 500
CALIBRATION_TUNE = 500
CALIBRATION_CHAINS = 2
#: base seed of calibration runs (simulation i uses SeedSequence([seed, i])): ``nadfit fit``'s
CALIBRATION_SEED = FitConfig.seed


# ---------------------------------------------------------------------------------------------
# sampling (module-level so tests can replace it with a stub)
# ---------------------------------------------------------------------------------------------
def sample_posterior(pm_model, cfg: FitConfig):
    """``nadfit.fitting.inference.fit.sample_posterior``; in sweep workers (``NADFIT_CORES`` set) chains run on
    that many cores only. The DataTree's ``attrs["nadfit_timing"]`` holds the fit's wall time
    split into set-up (``setup_s``: before the sampler's first progress event; nutpie's model
    compilation), sampling (``sample_s``) and, within it, the time JAX spent tracing and
    compiling (``compile_s``, JAX's monitoring events: each simulated data set is a new program),
    plus the mean number of leapfrog steps per kept draw (``mean_tree_steps``) -- the
    calibration's cost model."""
    from nadfit.fitting.inference import fit
    from nadfit.fitting.inference.xla_progress import compile_seconds

    last: list = [{}]
    c0 = compile_seconds()
    t0 = time.time()
    dt = fit.sample_posterior(pm_model, cfg, cores=fit.worker_cores(), on_progress=lambda e: last.__setitem__(0, e))
    total = time.time() - t0
    sample_s = last[0].get("elapsed_s")
    timing = {"total_s": round(total, 2), "compile_s": round(compile_seconds() - c0, 2)}
    if sample_s is not None:
        timing.update(sample_s=round(float(sample_s), 2), setup_s=round(total - float(sample_s), 2))
    stats = dt["sample_stats"] if "sample_stats" in dt.children else None
    if stats is not None and "n_steps" in stats:
        timing["mean_tree_steps"] = round(float(np.mean(stats["n_steps"].values)), 1)
    dt.attrs["nadfit_timing"] = timing
    return dt


def fit_timing(dt, wall_s: float) -> dict:
    """{total_s, setup_s, sample_s, compile_s, mean_tree_steps} of one fit (None when not measured)."""
    t = dict(dt.attrs.get("nadfit_timing") or {}) if hasattr(dt, "attrs") else {}
    return {"total_s": round(float(wall_s), 2), "setup_s": t.get("setup_s"), "sample_s": t.get("sample_s"),
            "compile_s": t.get("compile_s"), "mean_tree_steps": t.get("mean_tree_steps")}


# ---------------------------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------------------------
def parameter_labels(model) -> list[str]:
    """Flat labels: scalar names, then ``name[label]`` for every latent vector element."""
    out = list(model.scalar_parameters)
    for name, (_, labels) in model.vector_parameters.items():
        out += [f"{name}[{lab}]" for lab in labels]
    return out


def flatten(model, theta: dict) -> dict[str, float]:
    out = {name: float(np.asarray(theta[name])) for name in model.scalar_parameters}
    for name, (_, labels) in model.vector_parameters.items():
        v = np.asarray(theta[name], dtype=float).reshape(-1)
        out.update({f"{name}[{lab}]": float(v[i]) for i, lab in enumerate(labels)})
    return out


def draw_prior_matrix(model, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``n`` prior draws per flat parameter label (vectorised; for checks of the rank machinery)."""
    out = {name: np.asarray(p.scipy().rvs(size=n, random_state=rng), dtype=float)
           for name, p in model.priors().items()}
    for name, (_, labels) in model.vector_parameters.items():
        for lab in labels:
            out[f"{name}[{lab}]"] = rng.standard_normal(n)
    return out


def truth_theta(model, kind: str, rng: np.random.Generator) -> dict:
    if kind == "median":
        return {k: np.asarray(v, dtype=float) for k, v in model.prior_median_theta().items()}
    if kind == "draw":
        return model.prior_draw(rng)
    raise UserError(f"truth must be 'median' or 'draw', got {kind!r}", field="truth")


def to_jax(theta: dict) -> dict:
    import jax.numpy as jnp

    return {k: jnp.asarray(v) for k, v in theta.items()}


def posterior_matrix(dt, model) -> dict[str, np.ndarray]:
    """label -> (chain, draw) array of posterior draws."""
    post = dt["posterior"]
    out = {}
    for name in model.scalar_parameters:
        out[name] = np.asarray(post[name].values, dtype=float)
    for name, (dim, labels) in model.vector_parameters.items():
        arr = np.asarray(post[name].transpose("chain", "draw", dim).values, dtype=float)
        for i, lab in enumerate(labels):
            out[f"{name}[{lab}]"] = arr[..., i]
    return out


def thin_indices(n_total: int, ess_min: float, n_keep: int) -> tuple[np.ndarray, bool]:
    """Indices into the concatenated chains: ESS-thinned, then ``n_keep`` evenly spaced.

    Returns (indices, enough) where ``enough`` is False when fewer than ``n_keep`` effective draws
    exist (then the indices are evenly spaced over all draws)."""
    if n_total < n_keep:
        raise ValueError(f"only {n_total} posterior draws for {n_keep} rank draws")
    ess = ess_min if math.isfinite(ess_min) and ess_min > 0 else 1.0
    step = max(1, math.ceil(n_total / ess))
    candidates = np.arange(0, n_total, step)
    enough = len(candidates) >= n_keep
    pool = candidates if enough else np.arange(n_total)
    pick = np.round(np.linspace(0, len(pool) - 1, n_keep)).astype(int)
    return pool[pick], enough


def ess_min(draws: dict[str, np.ndarray]) -> float:
    import arviz as az

    values = []
    for arr in draws.values():
        if np.ptp(arr) == 0:
            continue
        v = float(az.ess(np.asarray(arr), method="bulk"))
        if math.isfinite(v):
            values.append(v)
    return min(values) if values else float("nan")


def ranks_of(truth: dict[str, float], draws: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, int]:
    """Rank of the true value among the selected draws: number of draws below it (0..len(idx)).
    Ties (e.g. a parameter the data do not touch and a stub sampler) are broken at random
    deterministically by the truth value so that ranks stay uniform."""
    out = {}
    for label, t in truth.items():
        flat = draws[label].reshape(-1)[idx]
        below = int(np.sum(flat < t))
        ties = int(np.sum(flat == t))
        if ties:
            below += int(np.random.default_rng(abs(hash(float(t))) % 2**32).integers(0, ties + 1))
        out[label] = below
    return out


# ---------------------------------------------------------------------------------------------
# one fit on simulated evidence
# ---------------------------------------------------------------------------------------------
def _evidence(select=(), exclude=()):
    from nadfit.datasets import load_evidence
    from nadfit.fitting.inference.config import select_evidence

    return select_evidence(load_evidence(), list(select), list(exclude))


def fit_simulated(hypothesis: str, theta: dict, cfg: FitConfig, rng: np.random.Generator, evidence=None,
                  base=None):
    """Simulate outcomes at ``theta`` and fit them. Returns (model, simulated outcomes, DataTree).
    ``base``: an EvidenceModel of the same hypothesis and evidence on the reported results (reused)."""
    from nadfit.fitting.inference.build import build_pymc_model
    from nadfit.models.model import EvidenceModel

    evidence = _evidence() if evidence is None else evidence
    base = base if base is not None else EvidenceModel(hypothesis, evidence, cfg.settings())
    sim = base.simulate_outcomes(to_jax(theta), rng)
    model = EvidenceModel(hypothesis, evidence, cfg.settings(), outcomes=sim)
    pm_model = build_pymc_model(model, widen=cfg.widen_priors)
    dt = sample_posterior(pm_model, cfg)
    return model, sim, dt


def _seed_for(seed: int, index: int) -> tuple[np.random.Generator, int]:
    ss = np.random.SeedSequence([int(seed), int(index)])
    rng = np.random.default_rng(ss)
    fit_seed = int(ss.generate_state(1, dtype=np.uint32)[0])
    return rng, fit_seed


def sbc_simulation(hypothesis: str, sim: int, seed: int = CALIBRATION_SEED, draws: int = CALIBRATION_DRAWS,
                   tune: int = CALIBRATION_TUNE, chains: int = CALIBRATION_CHAINS, rank_draws: int = DEFAULT_RANK_DRAWS,
                   target_accept: float = CALIBRATION_TARGET_ACCEPT,
                   test_quantities: bool = False) -> dict:
    """One SBC replicate (a pure function of its arguments). Returns a JSON-able dict.

    ``test_quantities``: also rank ``TEST_QUANTITIES`` (data-dependent test quantities are valid
    SBC checks, Modrák et al. 2023): the total log-likelihood of the simulated evidence at the
    truth among its values at the posterior draws, and the predicted whole-blood fold change at
    day 60 of 600 mg/day oral NMN."""
    t0 = time.time()
    rng, fit_seed = _seed_for(seed, sim)
    cfg = FitConfig(hypothesis=hypothesis, draws=draws, tune=tune, chains=chains, seed=fit_seed,
                    target_accept=target_accept).validate()
    from nadfit.models.model import EvidenceModel

    evidence = _evidence()
    model0 = EvidenceModel(hypothesis, evidence, cfg.settings())
    theta = model0.prior_draw(rng)
    model, _, dt = fit_simulated(hypothesis, theta, cfg, rng, evidence, base=model0)
    fit_wall = time.time() - t0
    mat = posterior_matrix(dt, model)
    n_total = chains * draws
    concat = {k: v.reshape(-1) for k, v in mat.items()}
    e = ess_min(mat)
    idx, enough = thin_indices(n_total, e, rank_draws)
    truth = flatten(model, theta)
    if test_quantities:
        t_truth, t_draws = test_quantity_values(model, dt, theta, idx)
        truth.update(t_truth)
        # the selected draws are already picked: index them 0..L-1
        concat.update({k: np.full(n_total, np.nan) for k in t_draws})
        for k, v in t_draws.items():
            concat[k][idx] = v
    ranks = ranks_of(truth, concat, idx)
    divergences = int(np.asarray(dt["sample_stats"]["diverging"].values).sum()) if "sample_stats" in dt.children else 0
    return {"sim": sim, "seed": seed, "fit_seed": fit_seed, "hypothesis": hypothesis, "rank_draws": rank_draws,
            "theta": truth, "ranks": ranks, "ess_min": None if not math.isfinite(e) else round(e, 1),
            "enough_ess": bool(enough), "divergences": divergences, "fit_wall_s": round(fit_wall, 2),
            "fit_timing": fit_timing(dt, fit_wall),
            "wall_time_s": round(time.time() - t0, 2)}


#: SBC test quantities (labels start with "T:")
TEST_QUANTITIES = ("T:loglik", "T:fold_day60_600mg_nmn")


def test_quantity_values(model, dt, theta: dict, idx: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Test quantities at the truth and at the selected posterior draws ``idx`` (chains
    concatenated): total log-likelihood of the (simulated) evidence the model was built on, and
    the whole-blood fold change at day 60 of 600 mg/day NMN (``predict.blood_at_day``)."""
    import jax

    from nadfit.fitting.inference.predict import blood_at_day

    post = dt["posterior"]
    ll = np.asarray(post["loglik_study"].sum("study").values, dtype=float).reshape(-1)[idx]
    ll_true = float(jax.jit(model.log_density)(to_jax(theta)))
    names = list(model.scalar_parameters) + list(model.vector_parameters)
    th = {}
    for name in names:
        v = post[name].stack(sample=("chain", "draw")).transpose("sample", ...).values
        th[name] = np.asarray(v, dtype=float)[idx]
    one = {k: np.asarray(v, dtype=float)[None, ...] for k, v in theta.items()}
    both = {k: np.concatenate([one[k], th[k]], axis=0) for k in names}
    fold = blood_at_day(model, both, "NMN", 600.0, 60.0, 1)
    return ({"T:loglik": ll_true, "T:fold_day60_600mg_nmn": float(fold[0])},
            {"T:loglik": ll, "T:fold_day60_600mg_nmn": np.asarray(fold[1:], dtype=float)})


# ---------------------------------------------------------------------------------------------
# SBC aggregation
# ---------------------------------------------------------------------------------------------
def n_bins(n_sims: int, rank_draws: int) -> int:
    cap = max(2, min(MAX_BINS, n_sims // 5))
    for b in range(cap, 1, -1):
        if (rank_draws + 1) % b == 0:
            return b
    return 2 if (rank_draws + 1) % 2 == 0 else 1


def bin_counts(ranks, rank_draws: int, bins: int) -> np.ndarray:
    r = np.asarray(ranks, dtype=int)
    return np.bincount(r * bins // (rank_draws + 1), minlength=bins)


def uniformity(ranks: dict[str, list[int]], rank_draws: int, alpha: float = ALPHA):
    """Chi-square test per quantity on B equiprobable bins; the pass rule is
    ``stats.uniformity_decision`` (Bonferroni over the quantities)."""
    from scipy import stats

    from nadfit.fitting.calibration.stats import uniformity_decision

    n = len(next(iter(ranks.values()))) if ranks else 0
    bins = n_bins(n, rank_draws)
    chi2 = {}
    for label, r in ranks.items():
        counts = bin_counts(r, rank_draws, bins)
        expected = len(r) / bins
        stat = float(np.sum((counts - expected) ** 2 / expected)) if expected > 0 else float("nan")
        p = float(stats.chi2.sf(stat, bins - 1)) if expected > 0 else float("nan")
        chi2[label] = {"stat": round(stat, 4), "df": bins - 1, "p": float(f"{p:.6g}")}
    decision = uniformity_decision({lab: c["p"] for lab, c in chi2.items()}, alpha)
    return bins, decision["threshold"], chi2, decision["passed"]


def plot_ranks(ranks: dict[str, list[int]], rank_draws: int, bins: int, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy import stats

    labels = list(ranks)
    n = len(next(iter(ranks.values()))) if ranks else 0
    cols = 6
    rows = max(1, math.ceil(len(labels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 1.9 * rows), squeeze=False)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1.0 / bins)
    for ax, label in zip(axes.flat, labels):
        counts = bin_counts(ranks[label], rank_draws, bins)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(n / bins, color="0.5", lw=0.8)
        inside = (counts >= lo) & (counts <= hi)
        ax.bar(np.arange(bins), counts, width=0.9, color=np.where(inside, "#4c72b0", "#c44e52"))
        ax.set_title(label, fontsize=7)
        ax.set_xticks([])
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(labels):]:
        ax.axis("off")
    fig.suptitle(f"{title}: SBC rank histograms ({n} simulations, {bins} bins, grey = 99 % binomial band)",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def aggregate_sbc(results: list[dict], failed: list[dict], hypothesis: str, out_json: Path, out_png: Path,
                  wall_time_s: float, extra: dict | None = None) -> dict:
    """Combine per-simulation results into sbc.json (+ the rank histogram figure)."""
    results = sorted(results, key=lambda r: r["sim"])
    if not results:
        raise UserError("no SBC simulation finished; nothing to aggregate", file=str(out_json))
    rank_draws = int(results[0]["rank_draws"])
    labels = list(results[0]["ranks"])
    ranks = {lab: [int(r["ranks"][lab]) for r in results] for lab in labels}
    bins, threshold, chi2, passed = uniformity(ranks, rank_draws)
    doc = {
        "schema": SBC_SCHEMA,
        "hypothesis": hypothesis,
        "n_sims": len(results),
        "n_draws_per_sim": rank_draws,
        "sims": [r["sim"] for r in results],
        "ranks": ranks,
        "bins": bins,
        "chi2": chi2,
        "pass_rule": f"chi-square uniformity p >= {ALPHA} / {len(labels)} parameters (Bonferroni) = {threshold:.3g}",
        "uniformity_pass": passed,
        "all_pass": bool(all(passed.values())),
        "failed_sims": failed,
        "low_ess_sims": [r["sim"] for r in results if not r.get("enough_ess", True)],
        "divergences": {str(r["sim"]): r.get("divergences", 0) for r in results if r.get("divergences")},
        "wall_time_s": round(float(wall_time_s), 2),
    }
    doc.update(extra or {})
    write_json(out_json, doc)
    plot_ranks(ranks, rank_draws, bins, out_png, hypothesis)
    return doc


def run_sbc(hypothesis: str, n_sims: int, out: Path, draws: int = CALIBRATION_DRAWS, tune: int = CALIBRATION_TUNE,
            chains: int = CALIBRATION_CHAINS, rank_draws: int = DEFAULT_RANK_DRAWS, seed: int = CALIBRATION_SEED, workers: int = 2,
            address: str | None = None, on_done=None) -> dict:
    """SBC through the sweep engine: one task per simulation in ``out/sim-NNNN/``; then
    ``out/sbc.json`` and ``out/sbc_ranks.png``."""
    from nadfit.fitting.sweep import engine as sweep

    spec = sweep.SweepSpec(tasks=sbc_tasks(hypothesis, n_sims, draws=draws, tune=tune, chains=chains,
                                                  rank_draws=rank_draws, seed=seed, prefix="sim"),
                           source=SBC_SWEEP_SOURCE)
    t0 = time.time()
    manifest = sweep.run_sweep(spec, out, workers=workers, address=address, on_done=on_done, aggregate=False,
                               kind="sbc")
    results, failed = collect_sbc(out, [t.id for t in spec.tasks], manifest)
    return aggregate_sbc(results, failed, hypothesis, Path(out) / "sbc.json", Path(out) / "sbc_ranks.png",
                         time.time() - t0, extra={"config": {"draws": draws, "tune": tune, "chains": chains,
                                                             "seed": seed}})


# ---------------------------------------------------------------------------------------------
# parameter recovery
# ---------------------------------------------------------------------------------------------
def _unconstrained(prior, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    if prior is None:
        return x
    if prior.family in ("lognormal", "halfnormal"):
        return np.log(np.maximum(x, 1e-300))
    if prior.family == "beta" or (prior.family == "uniform" and prior.args["lower"] == 0 and prior.args["upper"] == 1):
        x = np.clip(x, 1e-12, 1 - 1e-12)
        return np.log(x) - np.log1p(-x)
    return x


def recovery_rows(model, flat_truth: dict[str, float], mat: dict[str, np.ndarray], prior_seed: int) -> dict:
    """Per flat parameter: the truth, posterior median, ``RECOVERY_PROB`` equal-tailed interval,
    whether it covers the truth, the truth's posterior quantile, and the posterior contraction
    ``1 - var_post / var_prior`` on the unconstrained scale (prior variance from 4000 prior draws)."""
    priors = model.priors()
    prior_rng = np.random.default_rng(prior_seed)
    lo_q, hi_q = (1 - RECOVERY_PROB) / 2, 1 - (1 - RECOVERY_PROB) / 2
    rows = {}
    for label, t in flat_truth.items():
        x = mat[label].reshape(-1)
        prior = priors.get(label)
        prior_x = prior.scipy().rvs(size=4000, random_state=prior_rng) if prior else prior_rng.standard_normal(4000)
        var_post = float(np.var(_unconstrained(prior, x)))
        var_prior = float(np.var(_unconstrained(prior, prior_x)))
        contraction = 1.0 - var_post / var_prior if var_prior > 0 else float("nan")
        low, high = np.quantile(x, [lo_q, hi_q])
        rows[label] = {"truth": t, "median": float(np.median(x)), "low": float(low), "high": float(high),
                       "covered": bool(low <= t <= high), "quantile": float(np.mean(x < t)),
                       "contraction": round(contraction, 4)}
    return rows


def run_recovery(hypothesis: str, out: Path, truth: str = "median", cfg: FitConfig | None = None,
                 seed: int = CALIBRATION_SEED, parameters: tuple[str, ...] | None = None) -> dict:
    """Fit simulated evidence at a known truth; write ``out/recovery.json``. Returns the document."""
    from nadfit.models.model import EvidenceModel

    cfg = (cfg or FitConfig(hypothesis=hypothesis, draws=500, tune=500, chains=2, seed=seed)).validate()
    check_output_dir(Path(out), "recovery")  # before the fit
    t0 = time.time()
    rng, _ = _seed_for(seed, 0)
    evidence = _evidence()
    model0 = EvidenceModel(hypothesis, evidence, cfg.settings())
    theta = truth_theta(model0, truth, rng)
    model, sim, dt = fit_simulated(hypothesis, theta, cfg, rng, evidence, base=model0)
    mat = posterior_matrix(dt, model)
    flat_truth = flatten(model, theta)
    keys = [p for p in (parameters or KEY_PARAMETERS) if p in flat_truth]
    rows = recovery_rows(model, flat_truth, mat, seed + 7)
    for r in rows.values():
        r["identifiable"] = bool(r["contraction"] >= IDENTIFIABLE_CONTRACTION)
    identifiable = [k for k in keys if rows[k]["identifiable"]]
    covered = [k for k in identifiable if rows[k]["covered"]]
    divergences = int(np.asarray(dt["sample_stats"]["diverging"].values).sum()) if "sample_stats" in dt.children else 0
    doc = {
        "schema": RECOVERY_SCHEMA,
        "hypothesis": hypothesis,
        "truth": truth,
        "seed": seed,
        "interval": {"prob": RECOVERY_PROB, "kind": "eti"},
        "identifiable_rule": f"posterior contraction (unconstrained scale) >= {IDENTIFIABLE_CONTRACTION}",
        "key_parameters": keys,
        "identifiable_key_parameters": identifiable,
        "covered_key_parameters": covered,
        "coverage_identifiable": (len(covered) / len(identifiable)) if identifiable else None,
        "coverage_all": sum(r["covered"] for r in rows.values()) / len(rows),
        "passed": bool(len(covered) == len(identifiable)),
        "parameters": rows,
        "simulated_outcomes": {k: (bool(v) if isinstance(v, bool) else float(v)) for k, v in sim.items()},
        "sampler": {"draws": cfg.draws, "tune": cfg.tune, "chains": cfg.chains, "seed": cfg.seed},
        "divergences": divergences,
        "wall_time_s": round(time.time() - t0, 2),
    }
    with atomic_dir(out, "recovery") as tmp:
        write_json(tmp / "recovery.json", doc)
    return doc

# ---------------------------------------------------------------------------------------------
# SBC on the sweep engine: task kind, spec section, aggregation
# ---------------------------------------------------------------------------------------------
SBC_KEYS = {"hypothesis", "n_sims", "draws", "tune", "chains", "seed", "rank_draws"}


def task_sbc(params: dict, out: Path) -> dict:
    res = sbc_simulation(**params)
    with atomic_dir(out, "task") as tmp:
        write_json(tmp / "result.json", res)
    return {"wall_time_s": res["wall_time_s"], "ess_min": res["ess_min"], "divergences": res["divergences"]}


def sbc_tasks(hypothesis: str, n_sims: int, draws: int = CALIBRATION_DRAWS, tune: int = CALIBRATION_TUNE,
              chains: int = CALIBRATION_CHAINS, rank_draws: int = DEFAULT_RANK_DRAWS, seed: int = CALIBRATION_SEED, prefix: str | None = None) -> list:
    from nadfit.models.hypotheses import get_hypothesis

    get_hypothesis(hypothesis)
    if chains * draws < rank_draws:
        raise UserError(f"chains x draws ({chains * draws}) must be at least rank_draws ({rank_draws})",
                        field="draws")
    prefix = prefix or f"sbc-{hypothesis}"
    from nadfit.fitting.sweep.engine import Task

    return [Task(f"{prefix}-{i:04d}", "sbc",
                 {"hypothesis": hypothesis, "sim": i, "seed": seed, "draws": draws, "tune": tune, "chains": chains,
                  "rank_draws": rank_draws})
            for i in range(n_sims)]


def expand_spec_section(sbc: dict, defaults: dict, file: str, spec) -> tuple[list, dict]:
    """The ``sbc = {hypothesis, n_sims, ...}`` section of a sweep spec: its tasks and group."""
    from nadfit.fitting.sweep.engine import check_keys, positive_int
    from nadfit.models.hypotheses import HYPOTHESES

    check_keys(sbc, SBC_KEYS, file, "sbc")
    h = sbc.get("hypothesis", "mixed")
    if h not in HYPOTHESES:
        raise UserError(f"unknown hypothesis {h!r}; choose one of {', '.join(HYPOTHESES)}", file=file,
                        field="sbc.hypothesis")
    kw = {k: defaults[k] for k in ("draws", "tune", "chains", "seed") if k in defaults}
    kw.update({k: v for k, v in sbc.items() if k not in ("hypothesis", "n_sims")})
    for k, v in kw.items():
        positive_int(v, f"sbc.{k}", file, f"sbc.{k}", minimum=0 if k in ("tune", "seed") else 1)
    if "n_sims" not in sbc:
        raise UserError("sbc needs n_sims", file=file, field="sbc.n_sims")
    n = positive_int(sbc["n_sims"], "sbc.n_sims", file, "sbc.n_sims")
    try:
        group = sbc_tasks(h, n, **kw)
    except UserError as err:
        raise UserError(err.message, file=file, field=f"sbc.{err.field}") from None
    return group, {h: [t.id for t in group]}


def aggregate_sweep(out_dir: Path, groups: dict, manifest: dict) -> dict:
    """``sbc-<hypothesis>.json`` and its rank plot for every SBC group of a finished sweep."""
    done = {}
    for h, ids in groups.items():
        results, failed = collect_sbc(out_dir, ids, manifest)
        if results:
            aggregate_sbc(results, failed, h, out_dir / f"sbc-{h}.json", out_dir / f"sbc-{h}_ranks.png",
                          manifest["wall_time_s"])
            done[h] = f"sbc-{h}.json"
    return done


def collect_sbc(out_dir: Path, ids: list[str], manifest: dict) -> tuple[list[dict], list[dict]]:
    results, failed = [], []
    for tid in ids:
        folder = Path(out_dir) / tid
        if (folder / "COMPLETE").exists() and (folder / "result.json").exists():
            results.append(json.loads((folder / "result.json").read_text()))
        else:
            e = manifest["tasks"].get(tid, {})
            failed.append({"task": tid, "sim": e.get("params", {}).get("sim"), "error": e.get("error", "no result")})
    return results, failed
