"""The comparison pipeline (``nadfit compare``) and the main job (``nadfit run-all``).

``run_compare`` loads fitted runs, estimates marginal likelihoods (bridge sampling, SMC),
power-scaling sensitivity, optional wider-prior and exact-LOO results, assembles
``comparison.json`` and renders the HTML report. ``run_all`` fits the three hypotheses and
compares them.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from nadfit.datasets.errors import UserError
from nadfit.reports.conventions import retry_note

HYPOTHESIS_ORDER = ("direct", "via-nr", "mixed")
#: settings of the wider-prior refits of ``run-all --wider`` (spreads x2; shorter, 2 chains)
WIDER_PRIOR_FACTOR = 2.0
#: SMC settings shared by ``compare`` and ``run-all`` (one default for both commands). SMC is
#: opt-in (``--smc-runs 3``: 3 independent runs of 500 particles, adaptive tempering, HMC moves of
#: 5 x 10 leapfrog steps; ``marginal.smc_log_ml``): one run of 500 particles costs ~250 000 log
#: density gradients, ~15 CPU-minutes per hypothesis at today's 3-4 ms per gradient, far beyond
#: the main job's budget. By default the Bayes factors come from warp-III bridge sampling alone
#: (validated on a model with known evidence; its MC error is ESS-corrected), and the report says
#: that the SMC cross-check was not run (README, Performance).
SMC_RUNS = 0
SMC_DRAWS = 500


#: the hypothesis fitted to the human evidence alone by run-all (the uptake route cannot be told
#: apart by human blood data alone; mixed lets the data set the share)
HUMAN_ONLY_HYPOTHESIS = "mixed"


def human_only_exclusions(selection: dict) -> tuple[list[str], list[str]]:
    """(study ids to exclude so that only human in-vivo evidence remains, all study ids) of the
    selection."""
    from nadfit.datasets import load_evidence
    from nadfit.fitting.inference.config import select_evidence
    from nadfit.models.model import EvidenceModel

    ev = select_evidence(load_evidence(), selection["evidence"], selection["exclude"])
    model = EvidenceModel(HUMAN_ONLY_HYPOTHESIS, ev)
    return model.non_human_study_ids, list(model.study_ids)


def check_smc(smc_runs: int, smc_draws: int) -> None:
    """The SMC options of compare and run-all."""
    if smc_runs < 0 or smc_draws < 10:
        raise UserError("--smc-runs must be >= 0 and --smc-draws >= 10", field="smc")


def _quiet(*_a, **_k) -> None:
    return None


def clean_json(obj):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean_json(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return clean_json(obj.tolist())
    return obj


def _study_loo(run) -> dict:
    """Leave-one-study-out PSIS-LOO of a loaded run (the comparison's primary unit)."""
    from nadfit.fitting.comparison.assemble import PRIMARY_VAR, group_units, pointwise_loglik, psis_loo, study_of_units

    return psis_loo(group_units(pointwise_loglik(run.dt, PRIMARY_VAR), study_of_units(run.dt, PRIMARY_VAR))[1])


def _run_loo(run) -> dict:
    """PSIS-LOO over the units of the primary log-likelihood variable (rows today; ``--reloo``)."""
    from nadfit.fitting.comparison.assemble import pointwise_loglik, psis_loo

    return psis_loo(pointwise_loglik(run.dt))


def _check_refit_workers(n) -> None:
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise UserError(f"--refit-workers must be a whole number >= 1, got {n!r}", field="refit-workers")


def unreliable_studies(run) -> list[str]:
    """Studies whose leave-one-study-out PSIS estimate is unreliable (k > 0.7 or not estimable)."""
    from nadfit.fitting.comparison.assemble import BAD_K, PRIMARY_VAR, study_of_units

    studies = list(dict.fromkeys(study_of_units(run.dt, PRIMARY_VAR)))
    res = _study_loo(run)
    return [studies[i] for i in np.where(res["k"] > BAD_K)[0]]


def run_compare(run_dirs: list[Path], out: Path, *, smc_runs: int = SMC_RUNS, smc_draws: int = SMC_DRAWS,
                bridge: bool = True, psense: bool = True, wider: list[Path] | None = None,
                allow_failed: bool = False, html: bool = True, log=_quiet,
                calibration: Path | None = None, reloo: bool = False, reloo_draws: int = 300,
                obs_grid: bool = True, refit_studies: bool = False, refit_draws: int | None = None,
                refit_workers: int = 2, human_only: Path | None = None) -> dict:
    """``obs_grid``: reweight every run to the observation-settings grid (``robustness``);
    ``refit_studies``: exact refits (sweep engine, ``refit_workers`` workers) for the studies whose
    leave-one-study-out PSIS estimate is unreliable; ``human_only``: a run fitted to the human
    evidence alone (``run-all``'s ``fits-human-only/mixed``), compared with every run's human
    prediction (``comparison.json`` key ``human_only``, :mod:`nadfit.reports.human_only`)."""
    from nadfit.fitting.inference.runs import load_summaries, load_summary
    from nadfit.fitting.storage.outputs import atomic_dir, check_output_dir, write_json

    # the options, the run folders' summaries and --out are checked before the heavy imports
    check_smc(smc_runs, smc_draws)
    _check_refit_workers(refit_workers)
    load_summaries(run_dirs)
    inputs = [*run_dirs, *(wider or []), *([calibration] if calibration is not None else []),
              *([human_only] if human_only is not None else [])]
    if human_only is not None:
        load_summary(Path(human_only))
    check_output_dir(Path(out), "comparison", inputs=inputs)  # refuse a bad --out before any expensive work

    from nadfit.fitting.comparison.assemble import (
        BAD_K,
        PRIMARY_VAR,
        build_comparison,
        exact_refit_elpd,
        load_runs,
        unit_labels,
    )
    from nadfit.fitting.comparison.marginal import bridge_log_ml, smc_log_ml
    from nadfit.fitting.comparison.sensitivity import flagged, power_scaling
    from nadfit.fitting.inference.build import build_pymc_model
    from nadfit.fitting.storage.files import read_json

    runs = load_runs(run_dirs, allow_failed=allow_failed)
    human_dt = None
    from nadfit.reports.human_only import non_human_studies, prediction_shift

    if human_only is not None:
        from nadfit.fitting.inference.runs import load_run

        hrun = load_run(Path(human_only), groups=("predictions", "observed_data"))
        human_dt = hrun.dt
        extra = non_human_studies(human_dt["observed_data"])
        if extra:
            raise UserError(f"--human-only-run was fitted to non-human evidence too ({', '.join(extra[:4])}); "
                            "give a run fitted to human evidence alone", file=str(human_only))
    cal = None
    if calibration is not None:
        cal = read_json(Path(calibration), "calibration.json")
        if "confusion" not in cal:
            raise UserError("not a calibration.json from nadfit compare-calibration", file=str(calibration))
    t0 = time.time()
    smc, bridge_res = {}, {}
    for h, r in runs.items():
        r.require_current_evidence()
        pm_model = build_pymc_model(r.model(), widen=r.config.widen_priors)
        if bridge:
            log(f"bridge sampling: {h}")
            bridge_res[h] = bridge_log_ml(pm_model, r.model(), r.dt["posterior"].to_dataset(), seed=r.config.seed)
        if smc_runs > 0:
            log(f"SMC marginal likelihood ({smc_runs} runs x {smc_draws} particles): {h}")
            smc[h] = smc_log_ml(pm_model, runs=smc_runs, draws=smc_draws, seed=r.config.seed)
    sensitivity = {}
    if psense:
        log("power-scaling sensitivity")
        sensitivity["psense"] = {h: power_scaling(r) for h, r in runs.items()}
        sensitivity["psense_flagged"] = flagged(sensitivity["psense"])
    if wider:
        log("wider-prior runs")
        wruns = load_runs(wider, allow_failed=True)
        elpd = {h: _study_loo(wr)["elpd"] for h, wr in wruns.items()}
        sensitivity["wider_prior_factor"] = float(next(iter(wruns.values())).config.widen_priors)
        sensitivity["wider_prior_elpd"] = {h: float(v) for h, v in elpd.items()}
        sensitivity["wider_prior_best"] = max(elpd, key=elpd.get)
        sensitivity["wider_prior_runs"] = {h: str(wr.dir) for h, wr in wruns.items()}
    log("human prediction without the non-human evidence")
    shift = {h: prediction_shift(r.dt, human_dt) for h, r in runs.items()}
    if human_only is not None:
        gates = hrun.summary.get("gates") or {}
        for v in shift.values():
            v["human_only_run"] = str(human_only)
            v["human_only_hypothesis"] = hrun.hypothesis
            v["human_only_status"] = hrun.summary.get("status")
            v["human_only_gates"] = {k: g.get("value") for k, g in gates.items()}
    designs = None
    if len(runs) >= 2:  # a pair of hypotheses to tell apart
        log("which human trials could tell the hypotheses apart")
        from nadfit.fitting.comparison.designs import human_designs

        designs = human_designs(runs, seed=next(iter(runs.values())).config.seed)
    refits = None
    if reloo:
        refits = {}
        for h, r in runs.items():
            res = _run_loo(r)
            ids = unit_labels(r.dt, PRIMARY_VAR)
            bad = [ids[i] for i in np.where(res["k"] > BAD_K)[0]]
            if bad:
                log(f"exact refits for {len(bad)} high-k rows of {h}")
                refits[h] = exact_refit_elpd(r, bad, draws=reloo_draws, tune=reloo_draws, log=log)
    grid = None
    if obs_grid:
        from nadfit.fitting.comparison.robustness import observation_grid

        log("observation-settings grid (importance reweighting)")
        grid = observation_grid(runs, log=log)
    s_refits, s_mcse, s_cost = None, None, None
    if refit_studies:
        from nadfit.fitting.comparison.refits import REFIT_DRAWS
        from nadfit.fitting.comparison.refits import refit_studies as _refit

        todo = {h: (str(r.dir), unreliable_studies(r)) for h, r in runs.items()}
        todo = {h: v for h, v in todo.items() if v[1]}
        for h, (_, st) in todo.items():
            log(f"exact refits for {len(st)} studies of {h} with Pareto k > {BAD_K:g}: {', '.join(st)}")
        s_refits, s_mcse, s_cost = _refit(todo, draws=refit_draws or REFIT_DRAWS, workers=refit_workers, log=log)
    cmp = build_comparison(runs, smc=smc or None, bridge=bridge_res or None, sensitivity=sensitivity or None,
                           refits=refits, study_refits=s_refits or None, study_refit_mcse=s_mcse or None,
                           obs_grid=grid)
    if refits:
        cmp["reloo"] = {h: sorted(v) for h, v in refits.items()}
    if s_cost is not None:
        cmp["study_refit_cost"] = s_cost
    if cal is not None:
        cmp["calibration"] = cal
    cmp["human_only"] = shift
    cmp["designs"] = designs
    cmp["wall_time_s"] = round(time.time() - t0, 1)
    cmp = clean_json(cmp)
    with atomic_dir(out, "comparison", inputs=inputs) as tmp:
        write_json(tmp / "comparison.json", cmp)
    if html:
        render_comparison_folder(Path(out))
    return cmp


def _check_report_out(out: Path | None, folder: Path, default: str, force: bool) -> None:
    """A report written elsewhere than its default place in a nadfit output folder
    (``folder/default``, which belongs to that output) never overwrites a file without ``force``."""
    from nadfit.fitting.storage.outputs import check_output_file

    if out is not None and Path(out).resolve() != (Path(folder) / default).resolve():
        check_output_file(Path(out), force=force)


def render_comparison_folder(folder: Path, out: Path | None = None, *, force: bool = False, log=_quiet) -> Path:
    """Render ``comparison.html`` of a comparison folder (statuses of its runs looked up here).
    ``log(message)`` is called at the start of each step after the folder was read."""
    from nadfit.fitting.comparison.assemble import load_comparison, run_statuses
    from nadfit.reports.render import render_comparison

    _check_report_out(out, folder, "comparison.html", force)
    comp = load_comparison(folder)
    log("statuses of the compared runs")
    statuses = run_statuses(comp, Path(folder))
    log("figures, tables and HTML")
    return render_comparison(comp, Path(folder), statuses, out)


def render_run_report(run_dir: Path, out: Path | None = None, psense: dict | None = None, *,
                      force: bool = False, log=_quiet) -> Path:
    """Render ``report.html`` of a fitted run; ``psense`` reuses numbers already computed.
    ``log(message)`` is called at the start of each step (loading, sensitivity, figures and HTML)."""
    from nadfit.fitting.inference.runs import load_run, load_summary

    _check_report_out(out, run_dir, "report.html", force)
    load_summary(Path(run_dir))  # a folder that is not a usable run: one error line, before any progress
    log("loading the run")
    from nadfit.fitting.comparison.sensitivity import power_scaling
    from nadfit.reports.render import render_run

    run = load_run(Path(run_dir))
    if psense is None:
        log("power-scaling prior/likelihood sensitivity")
        psense = power_scaling(run)
    log("figures, tables and HTML")
    return render_run(run, out, psense=psense)


def run_all_settings(path: Path):
    """The fit settings of a ``run-all --config`` file: a ``nadfit fit`` config file
    (``inference.config.config_from_file``) without ``hypothesis``, since run-all fits every
    hypothesis. Raises a one-line UserError naming the file and field."""
    from nadfit.fitting.inference.config import config_from_file
    from nadfit.fitting.storage.files import read_mapping_file

    data = read_mapping_file(Path(path), "config", "config must be a mapping of settings")
    if "hypothesis" in data:
        raise UserError("run-all fits every hypothesis; remove 'hypothesis' from this config",
                        file=str(path), field="hypothesis")
    return config_from_file(Path(path))


def run_all(out: Path, *, quick: bool = False, draws: int | None = None, tune: int | None = None,
            chains: int | None = None, seed: int | None = None, smc_runs: int = SMC_RUNS, smc_draws: int = SMC_DRAWS, wider: bool = False,
            evidence: list[str] = (), exclude: list[str] = (), progress: bool = False, log=_quiet,
            fit_progress=None, obs_grid: bool = True, refit_studies: bool = False, refit_workers: int = 2,
            human_only: bool = True, settings=None) -> dict:
    """The main job: fit direct, via-nr and mixed, compare them, write the HTML reports.

    ``settings``: a FitConfig whose settings every fit starts from (``run-all --config``; its
    hypothesis is ignored); ``draws``, ``tune``, ``chains``, ``seed`` and a non-empty
    ``evidence``/``exclude`` win over it. Default: FitConfig's defaults, as for ``nadfit fit``.
    ``evidence``/``exclude`` select study or evidence ids as for ``nadfit fit`` (default: all).
    ``human_only``: also fit ``mixed`` to the human evidence alone (``fits-human-only/mixed``), so
    that the comparison shows how much the rodent and cell evidence moves the human prediction.
    ``fit_progress(label)`` returns the ``on_progress`` callback of one fit (``run_fit``)."""
    def _on(label):
        return fit_progress(label) if fit_progress is not None else None

    from dataclasses import replace

    from nadfit.fitting.inference.config import QUICK, FitConfig
    from nadfit.fitting.storage.outputs import check_output_dir, claim_output_dir

    base = FitConfig() if settings is None else settings
    draws = base.draws if draws is None else draws
    tune = base.tune if tune is None else tune
    chains = base.chains if chains is None else chains
    seed = base.seed if seed is None else seed

    out = check_output_dir(Path(out), "run-all")
    selection = {"evidence": list(evidence) or list(base.evidence), "exclude": list(exclude) or list(base.exclude)}
    evidence, exclude = selection["evidence"], selection["exclude"]

    def config(**kw) -> FitConfig:  # one fit's settings: the base, then this fit's own
        cfg = replace(base, **{"draws": draws, "tune": tune, "chains": chains, "seed": seed, **selection, **kw})
        if quick:
            for k, v in QUICK.items():
                setattr(cfg, k, v)
        return cfg

    config(hypothesis=HYPOTHESIS_ORDER[0]).validate()  # bad options: before any fit
    if evidence or exclude:
        from nadfit.datasets import load_evidence
        from nadfit.fitting.inference.config import select_evidence

        select_evidence(load_evidence(), selection["evidence"], selection["exclude"])
    check_smc(smc_runs, smc_draws)
    _check_refit_workers(refit_workers)
    # every part of the folder is checked before the first fit, then the folder is marked as ours
    for h in HYPOTHESIS_ORDER:
        check_output_dir(out / "fits" / h, "run")
        if wider:
            check_output_dir(out / "fits-wider-priors" / h, "run")
    if human_only:
        check_output_dir(out / "fits-human-only" / HUMAN_ONLY_HYPOTHESIS, "run")
    check_output_dir(out / "comparison", "comparison")
    claim_output_dir(out, "run-all")
    from nadfit.fitting.inference.fit import run_fit  # heavy (PyMC, JAX): after every check

    t0 = time.time()
    fits = []
    for h in HYPOTHESIS_ORDER:
        cfg = config(hypothesis=h)
        if quick:
            cfg.accept_failed_gates = True
        log(f"[bold]fit {h}[/bold]")
        s = run_fit(cfg, out / "fits" / h, progress=progress, on_progress=_on(h))
        log(f"  {h}: status {s['status']}, {s['wall_time_s']:.0f} s, divergences {s['divergences']}, "
            f"min ESS {s['gates']['ess_bulk_min']['value']}, max R-hat {s['gates']['r_hat_max']['value']}")
        if note := retry_note(s.get("attempts")):
            log(f"  {h}: {note}")
        fits.append(out / "fits" / h)
    wider_dirs = []
    if wider:
        for h in HYPOTHESIS_ORDER:
            cfg = config(hypothesis=h, draws=max(draws // 2, 100), tune=max(tune // 2, 100), chains=2,
                         widen_priors=WIDER_PRIOR_FACTOR, accept_failed_gates=True)
            log(f"[bold]fit {h} under the wider prior set[/bold]")
            run_fit(cfg, out / "fits-wider-priors" / h, progress=progress, on_progress=_on(f"{h} (wider priors)"))
            wider_dirs.append(out / "fits-wider-priors" / h)
    human_dir = None
    drop, selected = human_only_exclusions(selection) if human_only else ([], [])
    if human_only and set(drop) >= set(selected):
        log("no human evidence in the selection: the human-evidence-only fit is skipped")
    elif human_only and not drop:
        log("only human evidence in the selection: fits/mixed is already the human-evidence-only fit")
        human_dir = out / "fits" / HUMAN_ONLY_HYPOTHESIS
    elif human_only:
        human_dir = out / "fits-human-only" / HUMAN_ONLY_HYPOTHESIS
        cfg = config(hypothesis=HUMAN_ONLY_HYPOTHESIS, exclude=list(exclude) + drop, accept_failed_gates=True)
        log(f"[bold]fit {HUMAN_ONLY_HYPOTHESIS} on the human evidence alone[/bold]")
        s = run_fit(cfg, human_dir, progress=progress, on_progress=_on(f"{HUMAN_ONLY_HYPOTHESIS} (human evidence)"))
        log(f"  human evidence only: status {s['status']}, {s['wall_time_s']:.0f} s, divergences "
            f"{s['divergences']}, min ESS {s['gates']['ess_bulk_min']['value']}, max R-hat "
            f"{s['gates']['r_hat_max']['value']}")
        if note := retry_note(s.get("attempts")):
            log(f"  human evidence only: {note}")
    log("[bold]compare[/bold]")
    cmp = run_compare(fits, out / "comparison", smc_runs=0 if quick else smc_runs, smc_draws=smc_draws,
                      wider=wider_dirs or None, allow_failed=True, log=log, obs_grid=obs_grid,
                      refit_studies=refit_studies, refit_workers=refit_workers,
                      refit_draws=QUICK["draws"] if quick else None, human_only=human_dir)
    psense = (cmp.get("sensitivity") or {}).get("psense") or {}
    for d in fits:
        log(f"report {d / 'report.html'}")
        render_run_report(d, psense=psense.get(d.name))
    if human_dir is not None and human_dir not in fits:
        log(f"report {human_dir / 'report.html'}")
        render_run_report(human_dir)
    cmp["total_wall_time_s"] = round(time.time() - t0, 1)
    return cmp
