"""CLI: ``nadfit compare`` and ``nadfit run-all`` (the README's main command)."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from datasets.errors import UserError

PSENSE_PARAMETERS = ("pi_nmn", "pi_nr", "gamma", "t_blood_days", "sigma_person", "mu_phi")
HYPOTHESIS_ORDER = ("direct", "via-nr", "mixed")


def psense_for_run(run: dict) -> dict:
    """Power-scaling sensitivity (ArviZ psense_summary) of key parameters for one run."""
    import arviz as az
    import xarray as xr

    from models.model import EvidenceModel
    from fitting.marginal import log_prior_draws

    dt = run["dt"]
    model = EvidenceModel(run["summary"]["hypothesis"], _evidence_for(run))
    post = dt["posterior"].to_dataset()
    lp = log_prior_draws(model, post)
    lp = lp.assign_coords(chain=post["chain"], draw=post["draw"])
    work = xr.DataTree.from_dict({
        "posterior": post[[p for p in PSENSE_PARAMETERS if p in post]],
        "log_likelihood": dt["log_likelihood"].to_dataset(),
        "log_prior": lp,
    })
    table = az.psense_summary(work, var_names=[p for p in PSENSE_PARAMETERS if p in post])
    out = {}
    for name, row in table.iterrows():
        out[str(name)] = {"prior": float(row["prior"]), "likelihood": float(row["likelihood"]),
                          "diagnosis": str(row["diagnosis"])}
    return out


def _run_config(run: dict):
    """The FitConfig a run was fitted with (stored as JSON in posterior.nc's attributes)."""
    import json

    from fitting.fit import FitConfig

    try:
        cfg = json.loads(run["dt"].attrs.get("config") or "{}")
        return FitConfig(**cfg) if cfg else FitConfig(hypothesis=run["summary"]["hypothesis"])
    except (TypeError, ValueError):
        raise UserError("posterior.nc has a damaged 'config' attribute", file=str(run["dir"])) from None


def _evidence_for(run: dict):
    """The evidence rows the run was fitted to (its own selection, not the whole dossier)."""
    from datasets import load_evidence
    from fitting.fit import select_evidence

    cfg = _run_config(run)
    return select_evidence(load_evidence(), cfg.evidence, cfg.exclude)


def run_compare(run_dirs: list[Path], out: Path, *, smc_runs: int = 3, smc_draws: int = 1000,
                bridge: bool = True, psense: bool = True, wider: list[Path] | None = None,
                allow_failed: bool = False, html: bool = True, console: Console | None = None,
                calibration: Path | None = None, reloo: bool = False, reloo_draws: int = 300) -> dict:
    from datasets import evidence_fingerprint
    from fitting.build import build_pymc_model
    from fitting.compare import build_comparison, load_runs, psis_loo
    from fitting.marginal import bridge_log_ml, smc_log_ml
    from fitting.runs import atomic_dir, check_output_dir, write_json
    from models.model import EvidenceModel

    say = (console.print if console else (lambda *a, **k: None))
    check_output_dir(Path(out))  # refuse a bad --out before any expensive work
    runs = load_runs(run_dirs, allow_failed=allow_failed)
    for h, r in runs.items():
        missing = [g for g in ("posterior", "log_likelihood", "observed_data") if g not in r["dt"].children]
        if missing:
            raise UserError(f"posterior.nc lacks the group(s) {', '.join(missing)}; the run is damaged or was "
                            "written by an incompatible nadfit version", file=str(Path(r["dir"]) / "posterior.nc"))
    t0 = time.time()
    smc, bridge_res = {}, {}
    for h, r in runs.items():
        cfg = _run_config(r)
        evidence = _evidence_for(r)
        if evidence_fingerprint(evidence) != r["summary"]["evidence_fingerprint"]:
            raise UserError("the shipped evidence changed since this run was fitted; refit before comparing",
                            file=str(r["dir"]))
        model = EvidenceModel(h, evidence, cfg.settings())
        pm_model = build_pymc_model(model, widen=cfg.widen_priors)
        if bridge:
            say(f"bridge sampling: {h}")
            bridge_res[h] = bridge_log_ml(pm_model, model, r["dt"]["posterior"].to_dataset(), seed=cfg.seed)
        if smc_runs > 0:
            say(f"SMC marginal likelihood ({smc_runs} runs x {smc_draws} particles): {h}")
            smc[h] = smc_log_ml(pm_model, runs=smc_runs, draws=smc_draws, seed=cfg.seed)
    sensitivity = {}
    if psense:
        say("power-scaling sensitivity")
        sensitivity["psense"] = {h: psense_for_run(r) for h, r in runs.items()}
        flagged = sorted({f"{p} ({h})" for h, tab in sensitivity["psense"].items()
                          for p, v in tab.items() if v["diagnosis"] not in ("-", "", "nan")})
        sensitivity["psense_flagged"] = flagged
    if wider:
        say("wider-prior runs")
        wruns = load_runs(wider, allow_failed=True)
        elpd = {h: psis_loo(wr["dt"]["log_likelihood"]["evidence"].transpose("chain", "draw", "evidence_id").values)["elpd"]
                for h, wr in wruns.items()}
        sensitivity["wider_prior_factor"] = float(json.loads(next(iter(wruns.values()))["dt"].attrs["config"])["widen_priors"])
        sensitivity["wider_prior_elpd"] = {h: float(v) for h, v in elpd.items()}
        sensitivity["wider_prior_best"] = max(elpd, key=elpd.get)
        sensitivity["wider_prior_runs"] = {h: str(wr["dir"]) for h, wr in wruns.items()}
    refits = None
    if reloo:
        from fitting.compare import BAD_K, exact_refit_elpd

        refits = {}
        for h, r in runs.items():
            res = psis_loo(r["dt"]["log_likelihood"]["evidence"].transpose("chain", "draw", "evidence_id").values)
            ids = r["summary"]["evidence_ids"]
            bad = [ids[i] for i in np.where(res["k"] > BAD_K)[0]]
            if bad:
                say(f"exact refits for {len(bad)} high-k rows of {h}")
                refits[h] = exact_refit_elpd(r, bad, draws=reloo_draws, tune=reloo_draws, log=say)
    cmp = build_comparison(runs, smc=smc or None, bridge=bridge_res or None, sensitivity=sensitivity or None,
                           refits=refits)
    if refits:
        cmp["reloo"] = {h: sorted(v) for h, v in refits.items()}
    if calibration is not None:
        from fitting.runs import read_json

        cal = read_json(Path(calibration), "calibration.json")
        if "confusion" not in cal:
            raise UserError("not a calibration.json from nadfit compare-calibration", file=str(calibration))
        cmp["calibration"] = cal
    cmp["wall_time_s"] = round(time.time() - t0, 1)
    with atomic_dir(out) as tmp:
        write_json(tmp / "comparison.json", _clean(cmp))
    if html:
        from reports.render import render_comparison

        render_comparison(Path(out))
    return cmp


def _clean(obj):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not math.isfinite(float(obj)) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    return obj


def print_comparison(cmp: dict, console: Console) -> None:
    t = Table(title="NMN uptake hypotheses: PSIS-LOO over evidence rows")
    for c in ("hypothesis", "ELPD", "ΔELPD", "dSE", "stacking weight", "bad k rows"):
        t.add_column(c)
    for r in cmp["ranking"]:
        t.add_row(r["hypothesis"], f"{r['elpd']:.2f}", f"{r['elpd_diff']:.2f}", f"{r['dse']:.2f}",
                  f"{r['weight']:.3f}", str(cmp["loo"][r["hypothesis"]]["n_bad_k"]))
    console.print(t)
    console.print(f"[bold]Verdict:[/bold] {cmp['verdict']}")


def compare_command(
    runs: list[Path] = typer.Argument(..., help="run folders from nadfit fit (one per hypothesis)"),
    out: Path = typer.Option(..., "--out", help="folder for comparison.json and comparison.html"),
    smc_runs: int = typer.Option(3, help="independent SMC runs per hypothesis (0 = skip)"),
    smc_draws: int = typer.Option(1000, help="SMC particles per run"),
    no_bridge: bool = typer.Option(False, help="skip bridge sampling"),
    no_psense: bool = typer.Option(False, help="skip power-scaling sensitivity"),
    wider: Optional[list[Path]] = typer.Option(None, help="runs fitted under the wider prior set"),
    allow_failed: bool = typer.Option(False, help="accept runs whose diagnostics gates failed"),
    calibration: Optional[Path] = typer.Option(None, help="calibration.json from nadfit compare-calibration"),
    reloo: bool = typer.Option(False, help="refit exactly for rows with Pareto k > 0.7 (one fit per row)"),
    reloo_draws: int = typer.Option(300, help="draws (and tuning steps) per chain of each exact refit"),
) -> None:
    """Compare hypotheses: LOO, stacking, attribution, LOSO, Bayes factors, sensitivity."""
    if smc_runs < 0 or smc_draws < 10:
        raise UserError("--smc-runs must be >= 0 and --smc-draws >= 10", field="smc")
    cmp = run_compare(runs, out, smc_runs=smc_runs, smc_draws=smc_draws, bridge=not no_bridge,
                      psense=not no_psense, wider=wider, allow_failed=allow_failed, console=Console(stderr=True),
                      calibration=calibration, reloo=reloo, reloo_draws=reloo_draws)
    print_comparison(cmp, Console())


def run_all_command(
    out: Path = typer.Option(Path("runs/main"), "--out", help="output folder"),
    quick: bool = typer.Option(False, help="small fits for a first look (diagnostics gates may fail)"),
    draws: int = typer.Option(1000, help="posterior draws per chain"),
    tune: int = typer.Option(500, help="tuning steps per chain"),
    chains: int = typer.Option(4, help="chains"),
    seed: int = typer.Option(20261122, help="random seed"),
    smc_runs: int = typer.Option(3, help="independent SMC runs per hypothesis (0 = skip)"),
    smc_draws: int = typer.Option(500, help="SMC particles per run"),
    wider: bool = typer.Option(False, help="also refit under the wider prior set (x2 spreads; 2 chains; "
                                             "adds three fits, ~4-8 min on 2 cores)"),
) -> None:
    """The main job: fit direct, via-nr and mixed, compare them, write the HTML reports."""
    from fitting.fit import QUICK, FitConfig, run_fit
    from fitting.runs import check_output_dir

    console = Console(stderr=True)
    out = check_output_dir(Path(out))
    FitConfig(draws=draws, tune=tune, chains=chains, seed=seed).validate()  # refuse bad options before any fit
    if smc_runs < 0 or smc_draws < 10:
        raise UserError("--smc-runs must be >= 0 and --smc-draws >= 10", field="smc")
    t0 = time.time()
    fits = []
    for h in HYPOTHESIS_ORDER:
        cfg = FitConfig(hypothesis=h, draws=draws, tune=tune, chains=chains, seed=seed)
        if quick:
            for k, v in QUICK.items():
                setattr(cfg, k, v)
            cfg.accept_failed_gates = True
        console.print(f"[bold]fit {h}[/bold]")
        s = run_fit(cfg, out / "fits" / h, progress=console.is_terminal)
        console.print(f"  {h}: status {s['status']}, {s['wall_time_s']:.0f} s, divergences {s['divergences']}, "
                      f"min ESS {s['gates']['ess_bulk_min']['value']}, max R-hat {s['gates']['r_hat_max']['value']}")
        fits.append(out / "fits" / h)
    wider_dirs = []
    if wider:
        for h in HYPOTHESIS_ORDER:
            cfg = FitConfig(hypothesis=h, draws=max(draws // 2, 100), tune=max(tune // 2, 100), chains=2, seed=seed,
                            widen_priors=2.0, accept_failed_gates=True)
            if quick:
                for k, v in QUICK.items():
                    setattr(cfg, k, v)
            console.print(f"[bold]fit {h} under the wider prior set[/bold]")
            run_fit(cfg, out / "fits-wider-priors" / h, progress=console.is_terminal)
            wider_dirs.append(out / "fits-wider-priors" / h)
    console.print("[bold]compare[/bold]")
    cmp = run_compare(fits, out / "comparison", smc_runs=0 if quick else smc_runs, smc_draws=smc_draws,
                      wider=wider_dirs or None, allow_failed=True, console=console)
    from reports.render import render_run

    for d in fits:
        console.print(f"report {d / 'report.html'}")
        render_run(d)
    print_comparison(cmp, Console())
    console.print(f"total wall time {time.time() - t0:.0f} s; results in {out}")


def compare_calibration_command(
    out: Path = typer.Option(..., "--out", help="folder for calibration.json"),
    reps: int = typer.Option(2, help="replicates per generating hypothesis"),
    draws: int = typer.Option(300, help="draws per chain of each fit"),
    tune: int = typer.Option(300, help="tuning steps per chain"),
    chains: int = typer.Option(2, help="chains per fit"),
    seed: int = typer.Option(7, help="random seed"),
) -> None:
    """Confusion matrix: how often LOO picks the hypothesis that generated synthetic evidence."""
    from fitting.compare_calibration import confusion_matrix
    from fitting.runs import atomic_dir, write_json

    for name, v in (("reps", reps), ("draws", draws), ("chains", chains)):
        if v < 1:
            raise UserError(f"--{name} must be at least 1", field=name)
    if tune < 0 or seed < 0:
        raise UserError("--tune and --seed must be non-negative", field="tune")
    console = Console(stderr=True)
    with atomic_dir(out) as tmp:
        res = confusion_matrix(reps=reps, draws=draws, tune=tune, chains=chains, seed=seed, log=console.print)
        write_json(tmp / "calibration.json", _clean(res))
    t = Table(title=f"LOO picks (rows: generating hypothesis; {reps} replicates each)")
    hs = list(res["confusion"])
    t.add_column("generated by")
    for h in hs:
        t.add_column(h)
    for g in hs:
        t.add_row(g, *[str(res["confusion"][g][h]) for h in hs])
    Console().print(t)
    Console().print(f"recovery rate {res['recovery_rate']:.2f}")


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
    app.command("run-all")(run_all_command)
    app.command("compare-calibration")(compare_calibration_command)
