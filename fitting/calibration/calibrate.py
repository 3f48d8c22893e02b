"""``nadfit calibrate``: the full calibration of the inference and of the comparison (issue #17),
as one resumable sweep (``nadfit.fitting.sweep.engine``) followed by an aggregation into
``OUT/calibration.json`` and ``OUT/calibration.html``.

Parts (every task is a pure function of its parameters; seeds from ``SeedSequence([seed, part,
index])``; each writes ``OUT/<task id>/result.json`` atomically, so an interrupted run resumes):

1. **SBC** (``sbc-<h>-NNNN``, Talts et al. 2018; Modrák et al. 2023): per hypothesis ``sbc_sims``
   prior draws, simulated evidence with the shipped designs (every scored row, qualitative and
   bound terms included), one fit each; the ranks of every parameter and of two test quantities
   (the total log-likelihood of the simulated evidence, and the predicted whole-blood fold
   change at day 60 of 600 mg/day oral NMN) among ESS-thinned posterior draws
   (``calibration.sbc.sbc_simulation``). Uniformity: chi-square per quantity, Bonferroni over the
   quantities of a hypothesis at family level 0.01 (``stats.uniformity_decision``).
2. **Comparison calibration** (``compare-<g>-NN`` and ``misspec-<g>-NN``): per generating
   hypothesis ``compare_reps`` prior draws and simulated evidence sets; every hypothesis is fitted
   to each and the one with the highest PSIS-LOO elpd (study units, the product's comparison) is
   "picked". Confusion matrix with Wilson 95 % intervals. The misspecified variant simulates the
   evidence with other observation settings (``MISSPECIFIED``: more unreliable studies, looser
   direction tolerance) than the fits assume (the shipped defaults).
3. **Bayes-factor calibration** (``bf-NNNN``, Schad et al. 2022): the generating hypothesis is
   drawn from the prior model probabilities (``bf_prior``), evidence simulated from its prior,
   all hypotheses fitted; the posterior model probabilities must average to the prior ones.
   Estimator: the one behind the Bayes factors ``nadfit compare`` reports -- warp-III bridge
   sampling (``comparison.marginal.bridge_log_ml``, same draws and seed rule as the comparison),
   ``p(M | y) = p(M) Z_M / sum``; a replicate whose bridge estimate is not finite is left out and
   counted. The pseudo-BMA probabilities ``p(M) exp(elpd_loo_M)`` (the elpd_loo the comparison
   ranks by) are calibrated beside it; stacking weights are averaged too but are not
   probabilities. SMC is not used (an extra sampling pass per fit).
4. **Out-of-study coverage** (``loso-<study>``): for every human study with quantitative
   (non-binary) scored rows, the study is left out, the rest refitted on the *real* evidence,
   and the left-out rows predicted: posterior draws of the rows' model quantities plus the
   observation noise of their kinds (``models.kinds`` ``simulate``), on the reported scale.
   Coverage of the central 50 % and 90 % predictive intervals; binary rows of the study get the
   predicted probability of the reported finding instead.
5. **Recovery** (``recovery-<h>-NN``): truths drawn from the prior, one simulated evidence set
   and fit each; 94 % ETI coverage, posterior quantile and contraction per parameter.
   Identifiability is decided **before any fit** by ``ident-<h>`` from the prior and the design
   only (``identifiability_forecast``): forecast contraction >= 0.5.

Per-fit wall times (compile included) are recorded in every result and summarised with an
extrapolation to the full sizes (``FULL_SIZES``) in ``calibration.json["timing"]``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from nadfit.datasets.errors import UserError
from nadfit.fitting.calibration import stats
from nadfit.fitting.calibration.sbc import (
    CALIBRATION_CHAINS,
    CALIBRATION_DRAWS,
    CALIBRATION_SEED,
    CALIBRATION_TARGET_ACCEPT,
    CALIBRATION_TUNE,
    DEFAULT_RANK_DRAWS,
    _evidence,
    _seed_for,
    flatten,
    posterior_matrix,
    to_jax,
)
from nadfit.fitting.inference.config import FitConfig
from nadfit.fitting.storage.outputs import atomic_dir, write_json

CALIBRATE_SCHEMA = "nadfit.calibrate/1"
SOURCE = "nadfit calibrate"
#: observation settings the misspecified variant simulates with (the fits use the defaults)
MISSPECIFIED = {"unreliable_prior": 0.2, "tau": 0.2}
#: sizes of the full run (issue #17) -- used for the cost extrapolation
FULL_SIZES = {"sbc_sims": 200, "compare_reps": 10, "misspec_reps": 10, "bf_sims": 60, "recovery_truths": 20,
              "draws": CALIBRATION_DRAWS, "tune": CALIBRATION_TUNE, "chains": CALIBRATION_CHAINS}
#: identifiability forecast: prior draws per simulated data set, data sets
IDENT_PRIOR_DRAWS = 2000
IDENT_DATA_SETS = 3
TARGET = "nadfit.fitting.calibration.calibrate:"
PART_INDEX = {"sbc": 1, "compare": 2, "misspec": 3, "bf": 4, "loso": 5, "recovery": 6, "ident": 7}


# ---------------------------------------------------------------------------------------------
# fitting helpers (module-level hook so tests can replace the sampler)
# ---------------------------------------------------------------------------------------------
def _fit(hypothesis: str, evidence, cfg: FitConfig, outcomes: dict | None = None):
    """Fit ``hypothesis`` to ``evidence`` (its reported results, or ``outcomes``). Returns
    (EvidenceModel, DataTree, timing: total_s (model build and compilation included), setup_s,
    sample_s)."""
    from nadfit.fitting.calibration import sbc
    from nadfit.fitting.inference.build import build_pymc_model
    from nadfit.models.model import EvidenceModel

    t0 = time.time()
    model = EvidenceModel(hypothesis, evidence, cfg.settings(), outcomes=outcomes)
    dt = sbc.sample_posterior(build_pymc_model(model, widen=cfg.widen_priors), cfg)
    return model, dt, sbc.fit_timing(dt, time.time() - t0)


def _bridge(model, dt, cfg: FitConfig) -> dict:
    """Warp-III bridge-sampling log marginal likelihood of one fit, computed as ``nadfit compare``
    computes it (``comparison.pipeline``: the fit's draws, seed = the fit's seed)."""
    from nadfit.fitting.comparison.marginal import bridge_log_ml
    from nadfit.fitting.inference.build import build_pymc_model

    res = bridge_log_ml(build_pymc_model(model, widen=cfg.widen_priors), model, dt["posterior"].to_dataset(),
                        seed=cfg.seed)
    return {"log_ml": _finite_or_none(res["log_ml"]), "log_ml_se": _finite_or_none(res["mc_se"])}


def _finite_or_none(x) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _divergences(dt) -> int:
    return int(np.asarray(dt["sample_stats"]["diverging"].values).sum()) if "sample_stats" in dt.children else 0


def _cfg(params: dict, hypothesis: str, seed: int, observation: dict | None = None) -> FitConfig:
    return FitConfig(hypothesis=hypothesis, draws=int(params["draws"]), tune=int(params["tune"]),
                     chains=int(params["chains"]), seed=int(seed),
                     target_accept=float(params.get("target_accept", CALIBRATION_TARGET_ACCEPT)),
                     observation=dict(observation or {})).validate()


def _write(out: Path, res: dict) -> None:
    with atomic_dir(out, "task") as tmp:
        write_json(tmp / "result.json", res)


# ---------------------------------------------------------------------------------------------
# task kinds
# ---------------------------------------------------------------------------------------------
def task_sbc(params: dict, out: Path) -> dict:
    from nadfit.fitting.calibration.sbc import sbc_simulation

    res = sbc_simulation(params["hypothesis"], params["sim"], seed=params["seed"], draws=params["draws"],
                         tune=params["tune"], chains=params["chains"], rank_draws=params["rank_draws"],
                         target_accept=params.get("target_accept", CALIBRATION_TARGET_ACCEPT), test_quantities=True)
    res["fit_wall_s"] = [res["fit_wall_s"]]
    res["fit_timing"] = [res["fit_timing"]]
    _write(out, res)
    return {"wall_time_s": res["wall_time_s"], "divergences": res["divergences"]}


def task_compare(params: dict, out: Path) -> dict:
    """One replicate: simulate from ``generating`` (observation settings ``gen_observation``),
    fit every hypothesis (``fit_observation``), PSIS-LOO per fit."""
    from nadfit.fitting.comparison.assemble import BAD_K, psis_loo, stacking_weights
    from nadfit.models.model import EvidenceModel
    from nadfit.models.observation import ObservationSettings

    t0 = time.time()
    g = params["generating"]
    hyps = list(params["hypotheses"])
    rng, fit_seed = _seed_for(params["seed"], params["index"])
    evidence = _evidence()
    gen = EvidenceModel(g, evidence, replace(ObservationSettings(), **params.get("gen_observation", {})))
    theta = gen.prior_draw(rng)
    sim = gen.simulate_outcomes(to_jax(theta), rng)
    scores, elpd_i, walls = {}, {}, []
    for j, h in enumerate(hyps):
        cfg = _cfg(params, h, (fit_seed + j) % 2**31, params.get("fit_observation"))
        model, dt, tm = _fit(h, evidence, cfg, outcomes=sim)
        walls.append(tm)
        ll = np.asarray(dt["posterior"]["loglik_study"].transpose("chain", "draw", "study").values, dtype=float)
        loo = psis_loo(ll)
        elpd_i[h] = np.asarray(loo["elpd_i"], dtype=float)
        scores[h] = {"elpd": float(loo["elpd"]), "se": float(loo["se"]), "n_bad_k": int(np.sum(loo["k"] > BAD_K)),
                     "divergences": _divergences(dt), "wall_s": tm["total_s"]}
        if params.get("bridge"):
            t1 = time.time()
            scores[h].update(_bridge(model, dt, cfg), bridge_s=round(time.time() - t1, 2))
    picked = max(scores, key=lambda h: scores[h]["elpd"])
    prior = params.get("prior") or {h: 1.0 / len(hyps) for h in hyps}
    log_ml = {h: scores[h].get("log_ml") for h in hyps}
    probs_bridge = (stats.posterior_model_probs(log_ml, prior)
                    if params.get("bridge") and all(v is not None for v in log_ml.values()) else None)
    res = {"generating": g, "index": params["index"], "seed": params["seed"], "picked": picked,
           "scores": scores, "probs": stats.posterior_model_probs({h: scores[h]["elpd"] for h in hyps}, prior),
           "probs_bridge": probs_bridge,
           "stacking": stacking_weights(elpd_i, {}), "gen_observation": params.get("gen_observation", {}),
           "fit_observation": params.get("fit_observation", {}), "fit_wall_s": [w["total_s"] for w in walls],
           "fit_timing": walls,
           "wall_time_s": round(time.time() - t0, 2)}
    _write(out, res)
    return {"picked": picked, "wall_time_s": res["wall_time_s"]}


def _stack_draws(dt, model, n: int) -> tuple[dict, np.ndarray]:
    """{name: (n,) or (n, k)} evenly spaced posterior draws (chains concatenated)."""
    post = dt["posterior"]
    names = list(model.scalar_parameters) + list(model.vector_parameters)
    total = post.sizes["chain"] * post.sizes["draw"]
    idx = np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(int))
    th = {}
    for name in names:
        v = post[name].stack(sample=("chain", "draw")).transpose("sample", ...).values
        th[name] = np.asarray(v, dtype=float)[idx]
    return th, idx


def predict_rows(model, items: list, th: dict, rng: np.random.Generator) -> dict:
    """Posterior predictive of ``items`` (rows of ``model``) at the draws ``th``: per row, the
    simulated reported values (non-binary rows) or the probabilities of the reported finding
    (binary rows). Model quantities in one vmapped JAX call; noise per draw from the row's kind."""
    import jax
    import jax.numpy as jnp

    from nadfit.models.kinds import KINDS

    def quantities(t):
        cache: dict = {}
        qs = [model.quantity(it, t, cache) for it in items]
        lps = [jnp.sum(KINDS[it.kind].loglik(model, it, q, t)) if KINDS[it.kind].binary else jnp.asarray(0.0)
               for it, q in zip(items, qs)]
        first = [jnp.reshape(q, (-1,))[0] for q in qs]
        return jnp.stack(first), jnp.stack(lps)

    q, lp = jax.jit(jax.vmap(quantities))({k: jnp.asarray(v) for k, v in th.items()})
    q, lp = np.asarray(q), np.asarray(lp)
    n = q.shape[0]
    out = {}
    for k, it in enumerate(items):
        if KINDS[it.kind].binary:
            out[it.evidence_id] = {"binary": True, "p_reported": float(np.mean(np.exp(lp[:, k])))}
            continue
        sims = np.empty(n)
        for d in range(n):
            th_d = {name: v[d] for name, v in th.items()}
            sims[d] = KINDS[it.kind].simulate(model, it, float(q[d, k]), th_d, rng)
        out[it.evidence_id] = {"binary": False, "draws": sims}
    return out


def loso_items(model, study: str) -> list:
    return [it for it in model.items if it.study_id == study]


def quantitative_human_studies(hypothesis: str = "mixed") -> list[str]:
    """Studies with at least one non-binary scored row of a human observable."""
    from nadfit.models.kinds import KINDS
    from nadfit.models.model import EvidenceModel
    from nadfit.models.systems import is_human_observable

    model = EvidenceModel(hypothesis, _evidence())
    return list(dict.fromkeys(it.study_id for it in model.items
                              if is_human_observable(it.observable) and not KINDS[it.kind].binary))


def task_loso(params: dict, out: Path) -> dict:
    from nadfit.fitting.inference.config import select_evidence
    from nadfit.models.model import EvidenceModel

    t0 = time.time()
    h, study = params["hypothesis"], params["study"]
    rng, fit_seed = _seed_for(params["seed"], params["index"])
    evidence = _evidence()
    cfg = _cfg(params, h, fit_seed)
    _, dt, tm = _fit(h, select_evidence(evidence, [], [study]), cfg)
    full = EvidenceModel(h, evidence, cfg.settings())
    items = loso_items(full, study)
    th, _ = _stack_draws(dt, full, int(params.get("n_pred", 400)))
    pred = predict_rows(full, items, th, rng)
    rows = []
    for it in items:
        p = pred[it.evidence_id]
        row = {"study": study, "evidence_id": it.evidence_id, "label": it.label, "kind": it.kind,
               "reported": it.value if not p["binary"] else None}
        if p["binary"]:
            row.update(p_reported=round(p["p_reported"], 4))
        else:
            cov = stats.covers(p["draws"], float(it.value))
            row.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in cov.items()})
            row["median"] = float(np.median(p["draws"]))
        rows.append(row)
    res = {"hypothesis": h, "study": study, "rows": rows, "divergences": _divergences(dt),
           "fit_wall_s": [tm["total_s"]], "fit_timing": [tm],
           "wall_time_s": round(time.time() - t0, 2)}
    _write(out, res)
    return {"wall_time_s": res["wall_time_s"]}


def task_recovery(params: dict, out: Path) -> dict:
    from nadfit.fitting.calibration.sbc import RECOVERY_PROB, recovery_rows
    from nadfit.models.model import EvidenceModel

    t0 = time.time()
    h = params["hypothesis"]
    rng, fit_seed = _seed_for(params["seed"], params["index"])
    evidence = _evidence()
    cfg = _cfg(params, h, fit_seed)
    model0 = EvidenceModel(h, evidence, cfg.settings())
    theta = model0.prior_draw(rng)
    sim = model0.simulate_outcomes(to_jax(theta), rng)
    model, dt, tm = _fit(h, evidence, cfg, outcomes=sim)
    mat = posterior_matrix(dt, model)
    rows = recovery_rows(model, flatten(model, theta), mat, params["index"] + 7)
    res = {"hypothesis": h, "index": params["index"], "interval": RECOVERY_PROB, "parameters": rows,
           "divergences": _divergences(dt), "fit_wall_s": [tm["total_s"]], "fit_timing": [tm],
           "wall_time_s": round(time.time() - t0, 2)}
    _write(out, res)
    return {"wall_time_s": res["wall_time_s"]}


def identifiability_forecast(hypothesis: str, seed: int, n_prior: int = IDENT_PRIOR_DRAWS,
                             n_data: int = IDENT_DATA_SETS) -> dict:
    """Pre-fit identifiability rule, from the prior and the design only.

    For ``n_data`` evidence sets simulated from prior draws (the shipped designs), the total
    log-likelihood l(theta) of that set is evaluated at ``n_prior`` other prior draws (one
    vmapped JAX call). Per parameter, the main-effect SD of l over the prior
    (``stats.main_effect_variance``, 20 quantile bins; l winsorised at its 1st and 99th
    percentiles so that a few absurd prior draws do not dominate) gives a contraction forecast
    (``stats.forecast_contraction``: exact for a Gaussian prior and likelihood); its mean over the
    data sets decides: identifiable when >= ``stats.IDENTIFIABLE_CONTRACTION`` (0.5). A parameter
    identified only jointly with another (a ridge) has a small main effect and is conservatively
    called not identifiable."""
    import jax
    import jax.numpy as jnp

    from nadfit.models.model import EvidenceModel

    t0 = time.time()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), PART_INDEX["ident"]]))
    evidence = _evidence()
    model0 = EvidenceModel(hypothesis, evidence)
    draws = [model0.prior_draw(rng) for _ in range(n_prior)]
    stacked = {k: np.stack([np.asarray(d[k], dtype=float) for d in draws]) for k in draws[0]}
    flat = {lab: np.array([v[lab] for v in (flatten(model0, d) for d in draws)]) for lab in flatten(model0, draws[0])}
    forecasts = {lab: [] for lab in flat}
    sds = {lab: [] for lab in flat}
    for _ in range(n_data):
        theta0 = model0.prior_draw(rng)
        sim = model0.simulate_outcomes(to_jax(theta0), rng)
        m = EvidenceModel(hypothesis, evidence, outcomes=sim)
        f = jax.jit(jax.vmap(m.log_density))
        ll = np.concatenate([np.asarray(f({k: jnp.asarray(v[i:i + 100]) for k, v in stacked.items()}))
                             for i in range(0, n_prior, 100)])
        finite = ll[np.isfinite(ll)]
        lo, hi = np.quantile(finite, [0.01, 0.99]) if finite.size else (0.0, 0.0)
        llw = np.clip(np.where(np.isfinite(ll), ll, lo), lo, hi)
        for lab, x in flat.items():
            sd = math.sqrt(stats.main_effect_variance(x, llw))
            sds[lab].append(sd)
            forecasts[lab].append(stats.forecast_contraction(sd))
    rows = {lab: {"main_effect_sd": [round(s, 4) for s in sds[lab]],
                  "forecast_contraction": round(float(np.mean(forecasts[lab])), 4),
                  "identifiable": bool(np.mean(forecasts[lab]) >= stats.IDENTIFIABLE_CONTRACTION)} for lab in flat}
    return {"hypothesis": hypothesis, "n_prior": n_prior, "n_data": n_data, "parameters": rows,
            "identifiable": [lab for lab, r in rows.items() if r["identifiable"]],
            "rule": (f"forecast contraction >= {stats.IDENTIFIABLE_CONTRACTION}: r / (1 + r), r = sqrt(2) x main-effect "
                     f"SD (nats) of the log-likelihood over {n_prior} prior draws, mean over {n_data} prior-simulated "
                     "evidence sets (prior and design only, before any fit)"),
            "wall_time_s": round(time.time() - t0, 2)}


def task_ident(params: dict, out: Path) -> dict:
    res = identifiability_forecast(params["hypothesis"], params["seed"], params.get("n_prior", IDENT_PRIOR_DRAWS),
                                   params.get("n_data", IDENT_DATA_SETS))
    res["fit_wall_s"] = []
    _write(out, res)
    return {"wall_time_s": res["wall_time_s"]}


# ---------------------------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------------------------
def parse_prior(text: str | None, hypotheses: list[str]) -> dict[str, float]:
    """``"direct=0.25,via-nr=0.25,mixed=0.5"`` -> probabilities (default: equal)."""
    if not text:
        return {h: 1.0 / len(hypotheses) for h in hypotheses}
    out = {}
    for part in str(text).split(","):
        name, _, val = part.partition("=")
        name = name.strip()
        if name not in hypotheses:
            raise UserError(f"bf prior names {name!r}, not one of {', '.join(hypotheses)}", field="bf-prior")
        try:
            out[name] = float(val)
        except ValueError:
            raise UserError(f"bf prior probability of {name} must be a number, got {val!r}", field="bf-prior") from None
    if set(out) != set(hypotheses) or any(not (0 < v < 1) for v in out.values()) or abs(sum(out.values()) - 1) > 1e-6:
        raise UserError("bf prior needs a probability in (0, 1) for every hypothesis, summing to 1", field="bf-prior")
    return {h: out[h] for h in hypotheses}


def plan(hypotheses: list[str], sbc_sims: int = 0, compare_reps: int = 0, misspec_reps: int = 0, bf_sims: int = 0,
         bf_prior: dict | None = None, loso: bool = False, loso_hypothesis: str = "mixed",
         loso_studies: list[str] | None = None, recovery_truths: int = 0, draws: int = CALIBRATION_DRAWS,
         tune: int = CALIBRATION_TUNE, chains: int = CALIBRATION_CHAINS, rank_draws: int = DEFAULT_RANK_DRAWS,
         seed: int = CALIBRATION_SEED, target_accept: float = CALIBRATION_TARGET_ACCEPT,
         ident_prior_draws: int = IDENT_PRIOR_DRAWS) -> list:
    """Every task of a calibration run (ids are stable, so that a re-run resumes)."""
    from nadfit.fitting.sweep.engine import Task
    from nadfit.models.hypotheses import get_hypothesis

    for h in hypotheses:
        get_hypothesis(h)
    if sbc_sims and chains * draws < rank_draws:
        raise UserError(f"chains x draws ({chains * draws}) must be at least rank_draws ({rank_draws})", field="draws")
    fit = {"draws": draws, "tune": tune, "chains": chains, "target_accept": target_accept}
    tasks = []

    def seed_of(part: str, h: str = "") -> int:
        ss = np.random.SeedSequence([int(seed), PART_INDEX[part]] + [ord(c) for c in h])
        return int(ss.generate_state(1, dtype=np.uint32)[0])

    for h in hypotheses:
        for i in range(sbc_sims):
            tasks.append(Task(f"sbc-{h}-{i:04d}", "cal-sbc", {"hypothesis": h, "sim": i, "seed": seed,
                                                              "rank_draws": rank_draws, **fit}, TARGET + "task_sbc"))
    for part, reps, gen_obs in (("compare", compare_reps, {}), ("misspec", misspec_reps, dict(MISSPECIFIED))):
        for g in hypotheses:
            for r in range(reps):
                tasks.append(Task(f"{part}-{g}-{r:02d}", "cal-compare",
                                  {"generating": g, "index": r, "seed": seed_of(part, g), "hypotheses": list(hypotheses),
                                   "gen_observation": gen_obs, "fit_observation": {}, **fit},
                                  TARGET + "task_compare"))
    if bf_sims:
        prior = bf_prior or {h: 1.0 / len(hypotheses) for h in hypotheses}
        pick = np.random.default_rng(np.random.SeedSequence([int(seed), PART_INDEX["bf"], 1]))
        gens = pick.choice(list(prior), size=bf_sims, p=np.array(list(prior.values())) / sum(prior.values()))
        for i, g in enumerate(gens):
            tasks.append(Task(f"bf-{i:04d}", "cal-compare",
                              {"generating": str(g), "index": i, "seed": seed_of("bf"), "hypotheses": list(hypotheses),
                               "gen_observation": {}, "fit_observation": {}, "prior": prior, "bridge": True,
                               **fit},
                              TARGET + "task_compare"))
    if loso:
        studies = loso_studies or quantitative_human_studies(loso_hypothesis)
        known = set(_evidence()["study_id"])
        for i, s in enumerate(studies):
            if s not in known:
                raise UserError(f"unknown study {s!r} for out-of-study coverage", field="loso-studies")
            tasks.append(Task(f"loso-{s}", "cal-loso", {"hypothesis": loso_hypothesis, "study": s, "index": i,
                                                        "seed": seed_of("loso"), **fit}, TARGET + "task_loso"))
    if recovery_truths:
        for h in hypotheses:
            tasks.append(Task(f"ident-{h}", "cal-ident", {"hypothesis": h, "seed": seed, "n_prior": ident_prior_draws},
                              TARGET + "task_ident"))
            for i in range(recovery_truths):
                tasks.append(Task(f"recovery-{h}-{i:02d}", "cal-recovery",
                                  {"hypothesis": h, "index": i, "seed": seed_of("recovery", h), **fit},
                                  TARGET + "task_recovery"))
    if not tasks:
        raise UserError("nothing to calibrate: every size is 0 and --loso is off", field="sbc-sims")
    return tasks


def _check_resume(out: Path, tasks: list) -> None:
    """A resumed folder keeps its finished tasks: refuse when an earlier run (``sweep.json``)
    gave a task of the same id other parameters (other sampler settings or seed)."""
    path = Path(out) / "sweep.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text()).get("tasks", {})
    except (OSError, ValueError):
        return
    for t in tasks:
        prev = old.get(t.id, {}).get("params")
        if prev is not None and prev != t.params:
            diff = sorted(k for k in set(prev) | set(t.params) if prev.get(k) != t.params.get(k))
            raise UserError(f"{out} was started with other settings for task {t.id} ({', '.join(diff)}); "
                            "use a new --out folder or the same settings", file=str(path), field=diff[0])


def run_calibration(out: Path, hypotheses: list[str], *, workers: int = 2, address: str | None = None,
                    on_done=None, report: bool = True, **sizes) -> dict:
    """Run (or resume) the calibration sweep in ``out``, then write ``calibration.json`` and
    ``calibration.html``. ``sizes``: keyword arguments of :func:`plan`."""
    from nadfit.fitting.storage.outputs import check_output_dir
    from nadfit.fitting.sweep import engine as sweep

    out = Path(out)
    tasks = plan(list(hypotheses), **sizes)
    settings = {k: sizes.get(k, d) for k, d in (
        ("draws", CALIBRATION_DRAWS), ("tune", CALIBRATION_TUNE), ("chains", CALIBRATION_CHAINS),
        ("rank_draws", DEFAULT_RANK_DRAWS), ("seed", CALIBRATION_SEED), ("target_accept", CALIBRATION_TARGET_ACCEPT))}
    check_output_dir(out, "calibrate")  # refused before any work
    _check_resume(out, tasks)
    spec = sweep.SweepSpec(tasks=tasks, source=SOURCE)
    t0 = time.time()
    manifest = sweep.run_sweep(spec, out, workers=workers, address=address, on_done=on_done, aggregate=False,
                               kind="calibrate")
    doc = aggregate(out, tasks, manifest, hypotheses=list(hypotheses), settings=settings, workers=workers,
                    sizes=sizes, wall_time_s=time.time() - t0)
    write_json(out / "calibration.json", doc)
    if report:
        from nadfit.reports.calibration import render_calibration

        render_calibration(doc, out / "calibration.html")
    return doc


# ---------------------------------------------------------------------------------------------
# aggregation
# ---------------------------------------------------------------------------------------------
def _results(out: Path, tasks: list, manifest: dict) -> tuple[dict, list]:
    done, failed = {}, []
    for t in tasks:
        f = Path(out) / t.id
        if (f / "COMPLETE").exists() and (f / "result.json").exists():
            done[t.id] = json.loads((f / "result.json").read_text())
        else:
            failed.append({"task": t.id, "error": manifest["tasks"].get(t.id, {}).get("error", "no result")})
    return done, failed


def aggregate_sbc(results: list[dict], hypothesis: str) -> dict:
    from nadfit.fitting.calibration.sbc import uniformity

    results = sorted(results, key=lambda r: r["sim"])
    rank_draws = int(results[0]["rank_draws"])
    labels = list(results[0]["ranks"])
    ranks = {lab: [int(r["ranks"][lab]) for r in results] for lab in labels}
    bins, _, chi2, _ = uniformity(ranks, rank_draws)
    decision = stats.uniformity_decision({lab: chi2[lab]["p"] for lab in labels})
    return {"hypothesis": hypothesis, "n_sims": len(results), "rank_draws": rank_draws, "bins": bins, "ranks": ranks,
            "fractional_ranks": {lab: [round(float(x), 5) for x in stats.fractional_ranks(ranks[lab], rank_draws, seed=i)]
                                 for i, lab in enumerate(labels)},
            "test_quantities": [lab for lab in labels if lab.startswith("T:")],
            "chi2": chi2, "pass_rule": decision["rule"], "passed": decision["passed"], "failed": decision["failed"],
            "all_pass": decision["all_pass"],
            "low_ess_sims": [r["sim"] for r in results if not r.get("enough_ess", True)],
            "divergent_sims": sum(1 for r in results if r.get("divergences"))}


def aggregate(out: Path, tasks: list, manifest: dict, *, hypotheses: list[str], settings: dict, workers: int,
              sizes: dict, wall_time_s: float) -> dict:
    done, failed = _results(out, tasks, manifest)
    def by_prefix(p: str) -> list:
        return [(t, done[t.id]) for t in tasks if t.id.startswith(p) and t.id in done]

    doc = {"schema": CALIBRATE_SCHEMA, "hypotheses": hypotheses, "settings": settings,
           "sizes": {k: v for k, v in sizes.items() if k not in settings}, "n_tasks": len(tasks),
           "n_done": len(done), "failed_tasks": failed, "workers": workers, "wall_time_s": round(wall_time_s, 1)}
    # 1. SBC
    sbc = {}
    for h in hypotheses:
        res = [r for _, r in by_prefix(f"sbc-{h}-")]
        if res:
            sbc[h] = aggregate_sbc(res, h)
    doc["sbc"] = sbc
    # 2. confusion matrices
    for part, key in (("compare-", "confusion"), ("misspec-", "confusion_misspecified")):
        res = [r for _, r in by_prefix(part)]
        if res:
            summ = stats.confusion_summary([(r["generating"], r["picked"]) for r in res], hypotheses)
            summ["generating_observation"] = res[0]["gen_observation"]
            summ["fitted_observation"] = res[0]["fit_observation"]
            summ["replicates"] = [{"generating": r["generating"], "index": r["index"], "picked": r["picked"],
                                   "elpd": {h: round(s["elpd"], 3) for h, s in r["scores"].items()},
                                   "n_bad_k": {h: s["n_bad_k"] for h, s in r["scores"].items()},
                                   "divergences": {h: s["divergences"] for h, s in r["scores"].items()}} for r in res]
            doc[key] = summ
    # 3. Bayes-factor calibration
    res = [r for _, r in by_prefix("bf-")]
    if res:
        doc["bf_calibration"] = bf_calibration_of(res, next(t.params["prior"] for t in tasks if t.id.startswith("bf-")))
    # 4. out-of-study coverage
    res = [r for _, r in by_prefix("loso-")]
    if res:
        rows = [row for r in res for row in r["rows"]]
        quant = [row for row in rows if row.get("reported") is not None and "pit" in row]
        doc["coverage"] = {"hypothesis": res[0]["hypothesis"], "rows": rows,
                           "table": stats.coverage_table(quant),
                           "studies": [r["study"] for r in res]}
    # 5. recovery
    rec = {}
    for h in hypotheses:
        res = [r for _, r in by_prefix(f"recovery-{h}-")]
        ident = done.get(f"ident-{h}")
        if not res:
            continue
        labels = list(res[0]["parameters"])
        ident_set = set(ident["identifiable"]) if ident else set()
        params = {}
        for lab in labels:
            cov = [r["parameters"][lab]["covered"] for r in res]
            params[lab] = {"coverage": stats.rate(sum(cov), len(cov)),
                           "mean_contraction": round(float(np.mean([r["parameters"][lab]["contraction"] for r in res])), 4),
                           "forecast_contraction": ident["parameters"][lab]["forecast_contraction"] if ident else None,
                           "identifiable": lab in ident_set,
                           "quantiles": [round(r["parameters"][lab]["quantile"], 4) for r in res]}
        idl = [lab for lab in labels if lab in ident_set]
        k = sum(sum(r["parameters"][lab]["covered"] for r in res) for lab in idl)
        n = len(idl) * len(res)
        total = stats.rate(k, n)
        nominal = res[0]["interval"]
        rec[h] = {"n_truths": len(res), "interval": nominal, "rule": ident["rule"] if ident else None,
                  "identifiable": idl, "coverage_identifiable": total,
                  "passed": None if n == 0 else bool(total["low"] <= nominal <= total["high"] or total["rate"] >= nominal),
                  "parameters": params}
    doc["recovery"] = rec
    doc["timing"] = timing(done, tasks, workers)
    return doc


#: what ``bf_calibration`` calibrates (its ``estimator`` text)
BF_ESTIMATORS = {"bridge": "bridge sampling (warp-III) marginal likelihoods, p(M) Z_M normalised: the Bayes "
                           "factors nadfit compare reports",
                 "pseudo-BMA": "pseudo-BMA: p(M) exp(elpd_loo_M), normalised (PSIS-LOO over studies)"}


def bf_calibration_of(res: list[dict], prior: dict) -> dict:
    """Bayes-factor calibration of the bf replicates ``res`` (their result.json): the product's
    estimator (bridge sampling) where the replicates carry it, with the pseudo-BMA calibration
    under ``pseudo_bma``; replicates written before the bridge estimate was added (or whose
    estimate is not finite) leave the bridge calibration and are counted in ``bridge_missing``.
    Without any bridge estimate the pseudo-BMA calibration is the result."""
    def records(key: str) -> list[dict]:
        return [{"generating": r["generating"], "probs": r[key]} for r in res if r.get(key)]

    pseudo = stats.bf_calibration(records("probs"), prior)
    pseudo["estimator"] = BF_ESTIMATORS["pseudo-BMA"]
    bridge = records("probs_bridge")
    bf = stats.bf_calibration(bridge, prior) if bridge else dict(pseudo)
    bf["estimator"] = BF_ESTIMATORS["bridge" if bridge else "pseudo-BMA"]
    bf["bridge_missing"] = len(res) - len(bridge)
    if bridge:
        bf["pseudo_bma"] = pseudo
    bf["mean_stacking_weight"] = {h: float(np.mean([r["stacking"][h] for r in res])) for h in prior}
    bf["records"] = [{"generating": r["generating"], "probs": {h: round(p, 4) for h, p in r["probs"].items()},
                      **({"probs_bridge": {h: round(p, 4) for h, p in r["probs_bridge"].items()},
                          "log_ml": {h: s.get("log_ml") for h, s in r["scores"].items()}} if r.get("probs_bridge") else {})}
                     for r in res]
    return bf


def timing(done: dict, tasks: list, workers: int) -> dict:
    """Wall time of one fit at the sizes used, split into set-up (model build; nutpie's
    compilation), the XLA tracing and compilation inside sampling (``compile_s``: every simulated
    data set is a new program; independent of the number of draws) and the sampling proper, and
    the cost of the full run (``FULL_SIZES``): set-up + compilation + sampling scaled to the full
    number of steps -- an upper bound for the XLA sampler, since in short runs the long trees of
    poorly adapted early steps weigh more (with nutpie part of the compilation falls before the
    timed sampling, so it is not one). Without the split the whole fit time is scaled."""
    walls = [w for r in done.values() for w in r.get("fit_wall_s", [])]
    split = [t for r in done.values() for t in r.get("fit_timing", []) if t.get("sample_s") is not None]
    ident = [r["wall_time_s"] for tid, r in done.items() if tid.startswith("ident-")]
    if not walls:
        return {"n_fits": 0}
    params = next((t.params for t in tasks if "draws" in t.params), {})
    steps = params.get("chains", CALIBRATION_CHAINS) * (params.get("draws", CALIBRATION_DRAWS)
                                                        + params.get("tune", CALIBRATION_TUNE))
    full_steps = FULL_SIZES["chains"] * (FULL_SIZES["draws"] + FULL_SIZES["tune"])
    scale = full_steps / max(steps, 1)
    compile_s = tree_steps = None
    if split:
        setup_s = float(np.mean([t["setup_s"] for t in split]))
        sample_s = float(np.mean([t["sample_s"] for t in split]))
        compiles = [t["compile_s"] for t in split if t.get("compile_s") is not None]
        compile_s = float(np.mean(compiles)) if compiles else None
        trees = [t["mean_tree_steps"] for t in split if t.get("mean_tree_steps") is not None]
        tree_steps = float(np.mean(trees)) if trees else None
        fixed = min(compile_s or 0.0, sample_s)
        per_fit_full = setup_s + fixed + (sample_s - fixed) * scale
    else:
        setup_s = sample_s = None
        per_fit_full = float(np.mean(walls)) * max(1.0, scale)
    n_h = 3
    full_fits = (n_h * FULL_SIZES["sbc_sims"] + n_h * n_h * (FULL_SIZES["compare_reps"] + FULL_SIZES["misspec_reps"])
                 + n_h * FULL_SIZES["bf_sims"] + 4 + n_h * FULL_SIZES["recovery_truths"])
    # bridge sampling runs after each fit of a Bayes-factor replicate (not in the fit timings)
    bridges = [s["bridge_s"] for tid, r in done.items() if tid.startswith("bf-")
               for s in r.get("scores", {}).values() if s.get("bridge_s") is not None]
    bridge_s = float(np.mean(bridges)) if bridges else None
    cpu_h = (full_fits * per_fit_full + n_h * FULL_SIZES["bf_sims"] * (bridge_s or 0.0)) / 3600
    return {"n_fits": len(walls), "mean_fit_s": round(float(np.mean(walls)), 1),
            "median_fit_s": round(float(np.median(walls)), 1), "max_fit_s": round(float(np.max(walls)), 1),
            "mean_setup_s": None if setup_s is None else round(setup_s, 1),
            "mean_sample_s": None if sample_s is None else round(sample_s, 1),
            "mean_compile_s": None if compile_s is None else round(compile_s, 1),
            "mean_tree_steps": None if tree_steps is None else round(tree_steps, 1), "steps_per_fit": steps,
            "mean_bridge_s": None if bridge_s is None else round(bridge_s, 1),
            "identifiability_s": ident, "full_sizes": FULL_SIZES, "full_fits": full_fits,
            "full_per_fit_s_upper": round(per_fit_full, 1), "full_cpu_hours_upper": round(cpu_h, 1),
            "full_wall_hours_upper_at_workers": {str(w): round(cpu_h / w, 1) for w in (1, 2, 8, 32)}}
