"""``nadfit fit``: sample the posterior of one hypothesis, check it, save it.

Outputs (see README, "Run folder"): ``posterior.nc`` with groups posterior, prior,
log_likelihood (``evidence``: one term per scored evidence row), posterior_predictive
(``y_rep`` replicated values and ``p_finding`` reproduction probabilities per row),
predictions (blood NAD+ fold-change curves over dose and day, thinned), observed_data,
sample_stats; ``summary.json``; ``config.json``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import threading
import time
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import numpy as np

from nadfit.datasets.errors import UserError
from nadfit.fitting.inference.config import FitConfig, select_evidence
from nadfit.fitting.inference.runs import RUN_SCHEMA
from nadfit.fitting.inference.xla_progress import count_draws
from nadfit.fitting.storage.outputs import atomic_dir, check_output_dir, write_json
from nadfit.reports.conventions import CI_PROB

GATES = {"r_hat_max": 1.01, "ess_bulk_min": 400, "divergences_max": 0}
CURVE_DOSES_MG = (0.0, 100.0, 250.0, 300.0, 500.0, 600.0, 900.0, 1000.0, 1200.0, 2000.0)
CURVE_DAYS = 90
CURVE_DRAWS = 200



def package_versions() -> dict:
    out = {"python": platform.python_version()}
    for pkg in ("nadfit", "pymc", "pytensor", "arviz", "nutpie", "numpyro", "jax", "numpy", "scipy", "pandas",
                "xarray"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def config_hash(cfg: FitConfig, fingerprint: str) -> str:
    blob = json.dumps({"config": cfg.to_dict(), "evidence": fingerprint}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _round(x, digits=6):
    x = float(x)
    return None if not math.isfinite(x) else float(f"{x:.{digits}g}")


def gate_shortfall(names: list[str], max_draws: int):
    """The continuation rule of a fit (``xla_nuts.sample_numpyro``'s ``shortfall``): a one-line
    reason while the kept draws fail the R-hat or bulk-ESS gate of :data:`GATES` (computed as
    the run's gates are, on the same parameters ``names``). None (stop) when both pass; when a
    chain has diverged (more draws do not remove divergences; the retry at
    ``retry_target_accept`` deals with them); or when the ESS gate cannot be reached by
    ``max_draws`` draws per chain even if the ESS grows in proportion to the draws (a small
    first look, e.g. ``--draws 40``, is not continued in vain; its gate then fails)."""
    def shortfall(trace):
        divergences = int(trace["sample_stats"]["diverging"].sum())
        if divergences > 0:
            return None
        gates = gate_results(summary_rows(trace, names), divergences)
        ess, kept = gates["ess_bulk_min"]["value"], int(trace["posterior"].sizes["draw"])
        if ess is None or ess * max_draws / kept < GATES["ess_bulk_min"]:
            return None
        failed = [f"{k} {g['value']} (gate {g['threshold']})" for k, g in gates.items() if not g["passed"]]
        return ", ".join(failed) or None

    shortfall.var_names = list(names)
    return shortfall


def gate_results(summary_rows: dict, divergences: int) -> dict:
    rhat = max((r["r_hat"] for r in summary_rows.values() if r["r_hat"] is not None), default=float("nan"))
    ess = min((r["ess_bulk"] for r in summary_rows.values() if r["ess_bulk"] is not None), default=float("nan"))
    return {
        "r_hat_max": {"value": _round(rhat), "threshold": GATES["r_hat_max"], "passed": bool(rhat <= GATES["r_hat_max"])},
        "ess_bulk_min": {"value": _round(ess), "threshold": GATES["ess_bulk_min"], "passed": bool(ess >= GATES["ess_bulk_min"])},
        "divergences": {"value": int(divergences), "threshold": GATES["divergences_max"],
                        "passed": bool(divergences <= GATES["divergences_max"])},
    }


ADVICE = ("try: more tuning (--tune 2000), a higher target acceptance (target_accept = 0.99 in a config "
          "file; a divergent fit was already sampled again at retry_target_accept), more draws "
          "(--draws 2000), or inspect the pair plot in the report for funnels")


def gate_parameters(model) -> list[str]:
    """The parameters whose R-hat and bulk ESS the gates check: those the sampler moves (the
    marginalised latents are drawn afterwards, independently given each draw)."""
    return list(model.scalar_parameters) + list(model.sampled_vector_parameters)


def summarise(dt, model, cfg: FitConfig) -> dict:
    """Summary rows of every parameter (the sampled ones and the marginalised latents)."""
    return summary_rows(dt, list(model.scalar_parameters) + list(model.vector_parameters))


def summary_rows(dt, names: list[str]) -> dict:
    import arviz as az

    s = az.summary(dt, var_names=names, ci_prob=CI_PROB, ci_kind="eti")
    rows = {}
    for label, r in s.iterrows():
        rows[str(label)] = {
            "mean": _round(r["mean"]), "sd": _round(r["sd"]),
            "ci89_low": _round(r.iloc[2]), "ci89_high": _round(r.iloc[3]),
            "ess_bulk": _round(r["ess_bulk"]), "ess_tail": _round(r["ess_tail"]), "r_hat": _round(r["r_hat"], 4),
        }
    return rows


def _curves(model, post, n_draws: int, seed: int):
    """Whole-blood NAD+ fold change for oral NMN over CURVE_DOSES_MG x days 0..CURVE_DAYS."""
    import jax
    import jax.numpy as jnp

    stacked = {k: post[k].stack(sample=("chain", "draw")).transpose("sample", ...).values
               for k in list(model.scalar_parameters) + list(model.vector_parameters)}
    total = next(iter(stacked.values())).shape[0]
    idx = np.random.default_rng(seed).choice(total, size=min(n_draws, total), replace=False)
    idx.sort()

    def one(th):  # every dose in one course (one scan, not one per dose)
        b, _ = model.blood_curves(th, "NMN", CURVE_DOSES_MG, CURVE_DAYS)
        return b.T

    f = jax.jit(jax.vmap(one))
    th = {k: jnp.asarray(v[idx]) for k, v in stacked.items()}
    return np.asarray(f(th)), idx  # (draw, dose, day)


def _posterior_predictive(model, post, seed: int):
    """y_rep for every row with a reported value (its kind's own simulator,
    ``models.kinds.KINDS[kind].simulate``, on the reported scale: percent, p-value, weeks, an arm
    mean, ...; the marginal of each row, also for rows of a joint claim) and p_finding
    (= exp loglik) for qualitative findings and bounds stated as findings."""
    from nadfit.models.kinds import KINDS

    rng = np.random.default_rng(seed + 1)
    ll = post["loglik_item"].values
    q = post["model_quantity"].values
    y_rep = np.full_like(q, np.nan)
    p_finding = np.full_like(q, np.nan)
    sims = [k for k, it in enumerate(model.items) if not it.binary and KINDS[it.kind].simulate is not None]
    if sims:
        scalars = {n: post[n].values for n in model.scalar_parameters if n in post.data_vars}
        chains, draws = q.shape[:2]
        for c in range(chains):
            for d in range(draws):
                th = {n: v[c, d] for n, v in scalars.items()}
                for k in sims:
                    it = model.items[k]
                    y_rep[c, d, k] = KINDS[it.kind].simulate(model, it, q[c, d, k], th, rng)
    for k, it in enumerate(model.items):
        if it.keyword is not None or it.observable == "nampt_overexpression_nad":
            p_finding[..., k] = np.exp(ll[..., k])
    return y_rep, p_finding


def _sampler_finished(sampler) -> bool:
    """nutpie 0.16: ``is_finished`` raises TimeoutError while the sampler is still running."""
    try:
        return bool(sampler.is_finished)
    except TimeoutError:
        return False


def worker_cores() -> int | None:
    """Cores a sweep worker may use (``NADFIT_CORES``, set by the sweep engine), else None."""
    cores = int(os.environ.get("NADFIT_CORES", "0") or 0)
    return cores if cores > 0 else None


def progress_snapshot(chains, t_start: float) -> dict:
    """One progress event from nutpie's per-chain progress objects (``nutpie.ChainProgress``):
    ``phase`` ('tune' while any chain is warming up, else 'draw'), ``chains``, ``chains_started``,
    ``done``/``total`` (draws including tuning, over all chains), ``divergences`` (after tuning),
    ``elapsed_s`` and ``eta_s`` (None until a rate is known)."""
    done = sum(int(c.finished_draws) for c in chains)
    total = sum(int(c.total_draws) for c in chains)
    elapsed = time.time() - t_start
    eta = elapsed * (total - done) / done if done > 0 and total >= done else None
    return {"phase": "tune" if any(c.tuning for c in chains) else "draw", "chains": len(chains),
            "chains_started": sum(bool(c.started) for c in chains), "done": done, "total": total,
            "divergences": sum(int(c.divergences) for c in chains), "elapsed_s": elapsed, "eta_s": eta}


def sample_posterior(pm_model, cfg: FitConfig, progress: bool = False, cores: int | None = None,
                     on_progress=None, shortfall=None):
    """NUTS with ``cfg.sampler``: :func:`sample_nutpie` or :func:`sample_xla` (numpyro).

    Returns the trace (DataTree with groups posterior, incl. the deterministics, and
    sample_stats, incl. ``diverging`` and ``n_steps``). ``cores`` limits nutpie's threads; the XLA
    sampler runs one thread per host device that has a chain (the process's device count).
    ``shortfall`` (:func:`gate_shortfall`): numpyro continues the chains while it names a reason
    (nutpie samples ``cfg.draws`` and ignores it). Without it every sampler keeps ``cfg.draws``
    per chain (the calibration fits, whose ranks need a fixed number of draws)."""
    from nadfit.fitting.inference.latents import with_latents

    if cfg.sampler == "nutpie":
        trace = sample_nutpie(pm_model, cfg, progress=progress, cores=cores, on_progress=on_progress)
    else:
        trace = sample_xla(pm_model, cfg, progress=progress, on_progress=on_progress, shortfall=shortfall)
    return with_latents(trace, pm_model, cfg.seed)


def chain_method(chains: int, devices: int) -> str:
    """``parallel`` (one chain per host device, ``jax.pmap``) when every chain finds a device,
    else ``vectorized`` (all chains on one device, ``jax.vmap``: they advance in lock step)."""
    return "parallel" if chains <= devices else "vectorized"


#: name of the daemon thread that runs the compiled sampler (the CLI exits at once after an
#: interrupt while it still runs: see ``nadfit.fitting.cli._exit_if_sampler_still_runs``)
SAMPLER_THREAD = "nadfit-xla-sampler"


def sample_xla(pm_model, cfg: FitConfig, progress: bool = False, on_progress=None, shortfall=None):
    """NUTS compiled whole by XLA (``cfg.sampler`` numpyro, driven by
    :func:`nadfit.fitting.inference.xla_nuts.sample_numpyro`: the same draws as PyMC's
    ``pm.sample(nuts_sampler="numpyro")``), Stan's windowed adaptation of the step size and a
    diagonal (or, with ``cfg.dense_mass``, dense) mass matrix; one chain per host CPU device
    (:mod:`nadfit.fitting.inference.devices`), so the chains run in parallel with no Python
    between gradient evaluations. With ``shortfall`` (see :func:`gate_shortfall`) the chains
    continue in batches (``xla_nuts.continuation_draws``) up to ``cfg.draws_cap()`` per chain
    while it names a reason. Progress: ``compile`` and ``sample`` events, then, with one chain per device,
    ``tune``/``draw`` events every 0.2 s from numpyro's in-loop counters
    (:mod:`nadfit.fitting.inference.xla_progress`; every 5 % of a chain's iterations, ETA from
    the rate so far, divergences ``None`` until the end), an ``extend`` event before each
    continuation, and a final ``draw`` event with the totals and the divergences."""
    import jax

    from nadfit.fitting.inference.xla_nuts import sample_numpyro

    method = chain_method(cfg.chains, jax.local_device_count())
    state = {"total": cfg.chains * (cfg.draws + cfg.tune)}
    if on_progress is not None:
        on_progress({"phase": "compile"})
        on_progress({"phase": "sample", "chains": cfg.chains, "chain_method": method})
    t_start = time.time()
    box: dict = {}
    # numpyro's in-loop progress, counted instead of printed (parallel chains only: vectorised
    # chains would switch numpyro to a Python loop per iteration)
    # (numpyro counts in-loop only for several chains, one per device: one chain runs a Python loop)
    counting = on_progress is not None and method == "parallel" and cfg.chains > 1

    def on_batch(kept: int, more: int, reason: str) -> None:
        state["total"] += cfg.chains * more
        if on_progress is not None:
            on_progress({"phase": "extend", "chains": cfg.chains, "draws_kept": kept, "more": more,
                         "reason": reason})

    def on_redraw(divergences: int, factor: float) -> None:
        state["total"] += cfg.chains * cfg.draws
        if on_progress is not None:
            on_progress({"phase": "redraw", "chains": cfg.chains, "divergences": divergences,
                         "factor": factor, "draws": cfg.draws})

    def _run():
        try:
            box["trace"], _ = sample_numpyro(
                pm_model, draws=cfg.draws, tune=cfg.tune, chains=cfg.chains, seed=cfg.seed,
                target_accept=cfg.target_accept, dense_mass=cfg.dense_mass, chain_method=method,
                progress_bar=bool(counting or (progress and on_progress is None)),
                max_draws=cfg.draws_cap(), shortfall=shortfall, on_batch=on_batch,
                redraw_step_factor=cfg.redraw_step_factor, on_redraw=on_redraw)
        except BaseException as exc:  # handed to the calling thread
            box["error"] = exc

    # the compiled sampler runs on a daemon thread while this thread waits in short sleeps, so
    # that SIGINT/SIGTERM stop the command promptly (XLA cannot be cancelled; the process exits)
    with count_draws(cfg.chains) if counting else contextlib.nullcontext() as counter:
        worker = threading.Thread(target=_run, name=SAMPLER_THREAD, daemon=True)
        worker.start()
        t_chains, last = None, (0, 0)
        while worker.is_alive():
            worker.join(0.2)
            if counter is None:
                continue
            done, started = counter.snapshot()
            if (done, started) == last:
                continue
            last = (done, started)
            if t_chains is None:  # the first chain's first iteration: compilation is over
                t_chains = time.time()
            total = state["total"]
            running = time.time() - t_chains
            eta = running * (total - done) / done if done > 0 else None
            on_progress({"phase": "tune" if done < cfg.chains * cfg.tune else "draw", "chains": cfg.chains,
                         "chains_started": started, "done": done, "total": total, "divergences": None,
                         "elapsed_s": time.time() - t_start, "eta_s": eta})
    if "error" in box:
        raise box["error"]
    trace = box["trace"]
    if on_progress is not None:
        total = state["total"]
        on_progress({"phase": "draw", "chains": cfg.chains, "chains_started": cfg.chains, "done": total,
                     "total": total, "divergences": int(trace["sample_stats"]["diverging"].sum()),
                     "elapsed_s": time.time() - t_start, "eta_s": 0.0})
    return trace


def sample_nutpie(pm_model, cfg: FitConfig, progress: bool = False, cores: int | None = None,
                  on_progress=None):
    """NUTS with nutpie (JAX backend, low-rank modified mass matrix adaptation).

    The low-rank adaptation matters here: potency, study-effect and matrix-elasticity
    parameters form correlated ridges that a diagonal mass matrix explores slowly.

    ``on_progress(event)`` (see :func:`progress_snapshot`) is called from this thread every
    0.2 s while sampling; nutpie's own bar is then off. ``progress`` shows nutpie's bar instead.
    """
    import nutpie

    latest: list = []  # nutpie calls back on its own thread; the poll loop below reads the last list

    def _record(chains):
        latest[:] = [list(chains)]

    if on_progress is not None:
        on_progress({"phase": "compile"})
    compiled = nutpie.compile_pymc_model(pm_model, backend="jax", gradient_backend="jax")
    t_start = time.time()
    sampler = nutpie.sample(compiled, draws=cfg.draws, tune=cfg.tune, chains=cfg.chains,
                            cores=min(cfg.chains, cores or os.cpu_count() or 1), seed=cfg.seed,
                            target_accept=cfg.target_accept, progress_bar=progress and on_progress is None,
                            progress_callback=_record if on_progress is not None else None, progress_rate=200,
                            adaptation="low_rank", blocking=False)
    # poll from Python so that SIGINT/SIGTERM interrupt sampling promptly (a blocking call into
    # the Rust sampler would delay signal handling until sampling ends)
    try:
        while not _sampler_finished(sampler):
            time.sleep(0.2)
            if on_progress is not None and latest:
                on_progress(progress_snapshot(latest[0], t_start))
        trace = sampler.wait()
        if on_progress is not None and latest:
            on_progress(progress_snapshot(latest[0], t_start))
        return trace
    except BaseException:
        sampler.cancel()
        raise


def sampler_info(cfg: FitConfig, dt) -> dict:
    """The ``sampler`` block of summary.json: settings (``draws``: kept per chain, after any
    continuation), and the gradient evaluations spent
    (leapfrog steps of the kept draws, ``n_steps`` in sample_stats; nutpie and numpyro report them)."""
    out = {"name": cfg.sampler, "backend": "jax", "draws": int(dt["posterior"].sizes["draw"]),
           "draws_first_batch": cfg.draws, "max_draws": cfg.draws_cap(), "tune": cfg.tune, "chains": cfg.chains,
           "target_accept": cfg.target_accept,
           "mass_matrix": "low_rank" if cfg.sampler == "nutpie" else ("dense" if cfg.dense_mass else "diagonal")}
    if cfg.sampler != "nutpie":
        import jax

        out["chain_method"] = chain_method(cfg.chains, jax.local_device_count())
    stats = dt["sample_stats"]
    if "n_steps" in stats:
        out["gradient_evaluations_draws"] = int(stats["n_steps"].sum())
    return out


def preflight(model) -> None:
    """Refuse to sample when the log-likelihood is not finite at the prior-median point.

    Evaluates ``model.terms`` once, compiled (cheap compared with sampling), and raises a
    one-line :class:`UserError` naming the non-finite evidence rows and the parameter values.
    Compiled rather than run op by op: 1.2 s with the compilation cache warm and 6 s cold, against
    10-14 s op by op (session 14, ``direct``; the same values to 1e-14).
    """
    import jax

    th = model.prior_median_theta()
    terms = jax.jit(model.terms)(th)
    ll = np.asarray(terms["item"], dtype=float).reshape(-1)
    ids = list(model.evidence_ids)
    if all(math.isfinite(x) for x in ll):
        study = np.asarray(terms["study"], dtype=float)
        bad_s = [s for s, v in zip(model.study_ids, study) if not math.isfinite(v)]
        if bad_s:
            raise UserError(f"the log-likelihood is not finite at the prior median for study/studies "
                            f"{', '.join(bad_s[:8])} (a joint claim term); check these studies' rows",
                            field="evidence")
    bad = [i for i in range(len(ll)) if not math.isfinite(ll[i])]
    if not bad:
        return
    items = list(model.items)
    rows = ", ".join(f"{ids[i]} ({items[i].study_id}, loglik {ll[i]})" if i < len(items) else f"{ids[i]} ({ll[i]})"
                     for i in bad[:8])
    more = f" and {len(bad) - 8} more" if len(bad) > 8 else ""
    params = ", ".join(f"{k}={float(np.asarray(v)):.4g}" for k, v in th.items() if np.ndim(v) == 0)
    raise UserError(f"the log-likelihood is not finite at the prior median for evidence row(s) {rows}{more}; "
                    f"parameter values: {params}; check these rows' values or exclude them (--exclude)",
                    field="evidence")


def log_likelihood_group(post):
    """The run's ``log_likelihood`` group from its posterior: primary unit the study
    (``evidence``), secondary the claim (``claim``, exact leave-one-claim-out terms). The claim
    terms' dimension is named ``claim_id``: a variable named like its own dimension would be
    read back by xarray as a coordinate, not a data variable (and the claim unit was lost)."""
    import xarray as xr

    from nadfit.models.model import CLAIM_UNIT_DIM

    return xr.Dataset({"evidence": post["loglik_study"],
                       "claim": post["loglik_claim"].rename({"claim": CLAIM_UNIT_DIM})})


def sample_with_retry(pm_model, cfg: FitConfig, progress: bool = False, cores: int | None = None,
                      on_progress=None, sample=None, shortfall=None):
    """:func:`sample_posterior`, and once more at ``cfg.retry_target_accept`` (same seed) when the
    chains end with divergent transitions. Returns the trace kept, the config that produced it and
    the attempts (target_accept, divergences, sampling wall time in s, draws kept per chain), in
    order. A ``{"phase": "retry", ...}`` progress event announces the second attempt.
    ``shortfall`` is handed to the sampler (:func:`gate_shortfall`)."""
    sample = sample_posterior if sample is None else sample
    attempts = []
    extra = {} if shortfall is None else {"shortfall": shortfall}

    def attempt(c: FitConfig):
        t0 = time.time()
        dt = sample(pm_model, c, progress=progress, cores=cores, on_progress=on_progress, **extra)
        attempts.append({"target_accept": c.target_accept, "divergences": int(dt["sample_stats"]["diverging"].sum()),
                         "sampling_s": round(time.time() - t0, 2),
                         "draws": int(np.shape(dt["sample_stats"]["diverging"])[1])})
        attrs = dt["posterior"].attrs if "posterior" in dt else {}
        if attrs.get("redraws"):  # numpyro drew again with a smaller step size (xla_nuts.sample_numpyro)
            attempts[-1].update(redraw_step_factor=c.redraw_step_factor,
                                divergences_discarded=int(attrs.get("divergences_discarded", 0)))
        return dt

    dt = attempt(cfg)
    retry = cfg.retry_target_accept
    if attempts[0]["divergences"] == 0 or retry is None:
        return dt, cfg, attempts
    if on_progress is not None:
        on_progress({"phase": "retry", "divergences": attempts[0]["divergences"],
                     "target_accept": cfg.target_accept, "retry_target_accept": retry})
    used = replace(cfg, target_accept=retry)
    return attempt(used), used, attempts


def run_fit(cfg: FitConfig, out: Path, progress: bool = False, cores: int | None = None,
            on_progress=None) -> dict:
    """Fit one hypothesis and write the run folder atomically. Returns the summary dict.

    ``on_progress(event)``: ``{"phase": "compile"}`` before the model is compiled, sampling events
    (:func:`progress_snapshot`), ``{"phase": "post"}`` while predictive draws and diagnostics are
    computed, ``{"phase": "done"}`` at the end."""
    cfg.validate()
    check_output_dir(Path(out), "run")  # refuse a bad --out before any expensive work
    import pymc as pm
    import xarray as xr

    from nadfit.datasets import evidence_fingerprint, load_evidence
    from nadfit.fitting.inference.build import build_pymc_model
    from nadfit.models.model import EvidenceModel
    from nadfit.models.priors import registry

    evidence = select_evidence(load_evidence(), cfg.evidence, cfg.exclude)
    fingerprint = evidence_fingerprint(evidence)
    model = EvidenceModel(cfg.hypothesis, evidence, cfg.settings())
    if not model.items:
        raise UserError("the evidence selection leaves no scored evidence row", field="evidence")
    preflight(model)
    pm_model = build_pymc_model(model, widen=cfg.widen_priors)
    t0 = time.time()
    with atomic_dir(out, "run") as tmp:
        dt, used, attempts = sample_with_retry(pm_model, cfg, progress=progress, cores=cores,
                                               on_progress=on_progress,
                                               shortfall=gate_shortfall(gate_parameters(model), cfg.draws_cap()))
        if on_progress is not None:
            on_progress({"phase": "post"})
        with pm_model:
            # the parameters only: the reports compare their prior and posterior draws, and the
            # deterministics would evaluate the JAX likelihood once per draw, op by op (~3.5 s per
            # fit). PyTensor's Python linker: compiling the small forward graph with Numba cost 7 s
            prior = pm.sample_prior_predictive(draws=cfg.prior_draws, random_seed=cfg.seed,
                                               var_names=[rv.name for rv in pm_model.free_RVs],
                                               compile_kwargs={"mode": "FAST_COMPILE"})
        wall = time.time() - t0
        post = dt["posterior"].to_dataset()
        dt["log_likelihood"] = xr.DataTree(log_likelihood_group(post))
        prior_ds = prior["prior"].to_dataset()
        dt["prior"] = xr.DataTree(prior_ds)
        y_rep, p_finding = _posterior_predictive(model, post, cfg.seed)
        coords = {"chain": post["chain"], "draw": post["draw"], "evidence_id": model.evidence_ids}
        dt["posterior_predictive"] = xr.DataTree(xr.Dataset(
            {"y_rep": (("chain", "draw", "evidence_id"), y_rep),
             "p_finding": (("chain", "draw", "evidence_id"), p_finding)}, coords=coords))
        observed = np.array([np.nan if it.value is None else it.value for it in model.items])
        dt["observed_data"] = xr.DataTree(xr.Dataset(
            {"value": (("evidence_id",), observed),
             "statistic": (("evidence_id",), np.array([it.statistic for it in model.items], dtype=object).astype(str)),
             "finding": (("evidence_id",), np.array([it.keyword or "" for it in model.items], dtype=object).astype(str)),
             "observable": (("evidence_id",), np.array([it.observable for it in model.items], dtype=object).astype(str)),
             "study_id": (("evidence_id",), np.array([it.study_id for it in model.items], dtype=object).astype(str))},
            coords={"evidence_id": model.evidence_ids}))
        curves, idx = _curves(model, post, CURVE_DRAWS, cfg.seed)
        dt["predictions"] = xr.DataTree(xr.Dataset(
            {"blood_nad_fold_nmn": (("sample", "dose_mg", "day"), curves)},
            coords={"sample": idx, "dose_mg": list(CURVE_DOSES_MG), "day": np.arange(CURVE_DAYS + 1)}))

        divergences = attempts[-1]["divergences"]
        rows = summarise(dt, model, cfg)
        gated = set(gate_parameters(model))
        gates = gate_results({k: r for k, r in rows.items() if k.split("[")[0] in gated}, divergences)
        passed = all(g["passed"] for g in gates.values())
        status = "ok" if passed else ("accepted_failed_gates" if cfg.accept_failed_gates else "failed_gates")
        chash = config_hash(cfg, fingerprint)
        versions = package_versions()
        attrs = {
            "nadfit_schema": RUN_SCHEMA, "hypothesis": cfg.hypothesis, "seed": cfg.seed,
            "config_hash": chash, "evidence_fingerprint": fingerprint,
            "evidence_ids": json.dumps(model.evidence_ids), "versions": json.dumps(versions),
            "config": json.dumps(cfg.to_dict()), "status": status, "attempts": json.dumps(attempts),
        }
        dt.attrs.update(attrs)
        for group in ("prior", "posterior"):
            for var in list(dt[group].data_vars):
                if dt[group][var].dtype == object:
                    dt[group][var] = dt[group][var].astype(str)
        dt.to_netcdf(tmp / "posterior.nc", engine="h5netcdf")
        summary = {
            "schema": RUN_SCHEMA,
            "hypothesis": cfg.hypothesis,
            "status": status,
            "seed": cfg.seed,
            "sampler": sampler_info(used, dt),
            "attempts": attempts,
            "wall_time_s": round(wall, 2),
            "divergences": divergences,
            "gates": gates,
            "config_hash": chash,
            "evidence_fingerprint": fingerprint,
            "evidence_ids": model.evidence_ids,
            "n_evidence_rows": int(len(evidence)),
            "ci": {"prob": CI_PROB, "kind": "eti"},
            "parameters": rows,
            "priors": {name: registry()[name].to_dict() for name in model.scalar_parameters},
            "versions": versions,
        }
        write_json(tmp / "summary.json", summary)
        write_json(tmp / "config.json", cfg.to_dict())
    summary["wall_time_total_s"] = round(time.time() - t0, 2)
    if on_progress is not None:
        on_progress({"phase": "done"})
    return summary
