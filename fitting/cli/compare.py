"""``nadfit compare``, ``nadfit run-all`` (the README's main command) and ``nadfit report-compare``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from nadfit.fitting.cli.options import EVIDENCE_HELP, EXCLUDE_HELP, ForceFile, Quiet, Verbose
from nadfit.fitting.cli.progress import FitProgress, check_verbosity
from nadfit.fitting.comparison.pipeline import SMC_DRAWS, SMC_RUNS, check_smc

SMC_RUNS_HELP = "independent SMC runs per hypothesis (0 = skip)"
SMC_DRAWS_HELP = "SMC particles per run (compare and run-all share this default)"
REFIT_STUDIES_HELP = ("refit exactly (sweep engine) without each study whose leave-one-study-out PSIS "
                      "estimate is unreliable (Pareto k > 0.7); one fit per study and hypothesis")
REFIT_WORKERS_HELP = "Dask workers (processes, one core each) for --refit-studies"
NO_OBS_GRID_HELP = "skip the observation-settings sensitivity grid (importance reweighting of the draws)"

HUMAN_ONLY_RUN_HELP = ("a run fitted to the human evidence alone (run-all's fits-human-only/mixed): the report "
                       "shows how much the rodent and cell evidence moves the human prediction")
NO_HUMAN_ONLY_HELP = "skip the fit of mixed to the human evidence alone (one fit fewer)"
RUN_ALL_CONFIG_HELP = ("TOML/YAML file of fit settings as for 'nadfit fit --config' (sampler, target_accept, ...; "
                       "no hypothesis), applied to every fit; the options given here win")

# the options compare and run-all share
SmcRuns = Annotated[int, typer.Option(help=SMC_RUNS_HELP)]
SmcDraws = Annotated[int, typer.Option(help=SMC_DRAWS_HELP)]
RefitStudies = Annotated[bool, typer.Option("--refit-studies", help=REFIT_STUDIES_HELP)]
RefitWorkers = Annotated[int, typer.Option(help=REFIT_WORKERS_HELP)]
NoObsGrid = Annotated[bool, typer.Option("--no-obs-grid", help=NO_OBS_GRID_HELP)]


def print_comparison(cmp: dict, console: Console) -> None:
    unit = cmp.get("unit") or {}
    t = Table(title=f"NMN uptake hypotheses: PSIS-LOO over {unit.get('plural', 'evidence rows')}")
    for c in ("hypothesis", "ELPD", "ΔELPD", "dSE", "MC error", "stacking weight", f"bad k {unit.get('plural', 'rows')}"):
        t.add_column(c)
    for r in cmp["ranking"]:
        mc = "–" if r.get("mcse") is None else f"{r['mcse']:.2f}"
        t.add_row(r["hypothesis"], f"{r['elpd']:.2f}", f"{r['elpd_diff']:.2f}", f"{r['dse']:.2f}", mc,
                  f"{r['weight']:.3f}", str(cmp["loo"][r["hypothesis"]]["n_bad_k"]))
    console.print(t)
    console.print(f"[bold]Verdict:[/bold] {cmp['verdict']}")


def compare_command(
    runs: list[Path] = typer.Argument(..., help="run folders from nadfit fit (one per hypothesis)"),
    out: Path = typer.Option(..., "--out", help="folder for comparison.json and comparison.html"),
    smc_runs: SmcRuns = SMC_RUNS,
    smc_draws: SmcDraws = SMC_DRAWS,
    no_bridge: bool = typer.Option(False, "--no-bridge", help="skip bridge sampling"),
    no_psense: bool = typer.Option(False, "--no-psense", help="skip power-scaling sensitivity"),
    wider: Optional[list[Path]] = typer.Option(None, "--wider-runs", help="runs fitted under the wider prior set (repeated)"),
    allow_failed: bool = typer.Option(False, "--accept-failed-gates", help="accept runs whose diagnostics gates failed"),
    calibration: Optional[Path] = typer.Option(None, help="calibration.json from nadfit compare-calibration"),
    reloo: bool = typer.Option(False, "--reloo", help="refit exactly for rows with Pareto k > 0.7 (one fit per row)"),
    reloo_draws: int = typer.Option(300, help="draws (and tuning steps) per chain of each exact refit"),
    refit_studies: RefitStudies = False,
    refit_workers: RefitWorkers = 2,
    no_obs_grid: NoObsGrid = False,
    human_only_run: Optional[Path] = typer.Option(None, "--human-only-run", help=HUMAN_ONLY_RUN_HELP),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Compare hypotheses: LOO, stacking, attribution, LOSO, Bayes factors, sensitivity."""
    check_verbosity(quiet, verbose)
    check_smc(smc_runs, smc_draws)
    from nadfit.fitting.comparison.pipeline import run_compare

    view = FitProgress(Console(stderr=True), quiet=quiet, verbose=verbose)
    cmp = run_compare(runs, out, smc_runs=smc_runs, smc_draws=smc_draws, bridge=not no_bridge,
                      psense=not no_psense, wider=wider, allow_failed=allow_failed,
                      log=view.log, calibration=calibration, reloo=reloo, reloo_draws=reloo_draws,
                      refit_studies=refit_studies, refit_draws=reloo_draws, refit_workers=refit_workers,
                      obs_grid=not no_obs_grid, human_only=human_only_run)
    print_comparison(cmp, Console())


def run_all_command(
    out: Path = typer.Option(Path("runs/main"), "--out", help="output folder"),
    quick: bool = typer.Option(False, "--quick", help="small fits for a first look (diagnostics gates may fail)"),
    draws: Optional[int] = typer.Option(None, help="posterior draws per chain (default: as for 'nadfit fit')"),
    tune: Optional[int] = typer.Option(None, help="tuning steps per chain (default: as for 'nadfit fit')"),
    chains: Optional[int] = typer.Option(None, help="chains (default: as for 'nadfit fit')"),
    seed: Optional[int] = typer.Option(None, help="random seed (default: the config file's, else as for 'nadfit fit')"),
    config: Optional[Path] = typer.Option(None, "--config", help=RUN_ALL_CONFIG_HELP),
    smc_runs: SmcRuns = SMC_RUNS,
    smc_draws: SmcDraws = SMC_DRAWS,
    wider: bool = typer.Option(False, "--wider", help="also refit under the wider prior set (x2 spreads; 2 chains; "
                                             "adds three fits, ~4-8 min on 2 cores)"),
    evidence: Optional[list[str]] = typer.Option(None, help=EVIDENCE_HELP),
    exclude: Optional[list[str]] = typer.Option(None, help=EXCLUDE_HELP),
    refit_studies: RefitStudies = False,
    refit_workers: RefitWorkers = 2,
    no_obs_grid: NoObsGrid = False,
    no_human_only: bool = typer.Option(False, "--no-human-only", help=NO_HUMAN_ONLY_HELP),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """The main job: fit direct, via-nr and mixed, compare them, write the HTML reports."""
    check_verbosity(quiet, verbose)
    check_smc(smc_runs, smc_draws)
    from nadfit.fitting.cli.options import split_ids
    from nadfit.fitting.comparison.pipeline import run_all, run_all_settings

    settings = run_all_settings(config) if config is not None else None
    console = Console(stderr=True)
    view = FitProgress(console, quiet=quiet, verbose=verbose)
    try:
        cmp = run_all(out, quick=quick, draws=draws, tune=tune, chains=chains, seed=seed, smc_runs=smc_runs,
                      smc_draws=smc_draws, wider=wider, evidence=split_ids(evidence), exclude=split_ids(exclude),
                      log=view.log, fit_progress=view.callback, obs_grid=not no_obs_grid,
                      refit_studies=refit_studies, refit_workers=refit_workers, human_only=not no_human_only,
                      settings=settings)
    finally:
        view.close()
    print_comparison(cmp, Console())
    console.print(f"total wall time {cmp['total_wall_time_s']:.0f} s; results in {out}")


def report_compare_command(
    comparison_dir: Path = typer.Argument(..., help="comparison folder written by 'nadfit compare'"),
    out: Optional[Path] = typer.Option(None, "--out", help="output HTML file (default DIR/comparison.html)"),
    force: ForceFile = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Write a self-contained HTML report of a hypothesis comparison."""
    check_verbosity(quiet, verbose)
    from nadfit.fitting.cli.progress import render_with_steps
    from nadfit.fitting.comparison.pipeline import render_comparison_folder

    render_with_steps("report-compare", "comparison report",
                      lambda log: render_comparison_folder(comparison_dir, out, force=force, log=log), quiet=quiet)


def register(app: typer.Typer) -> None:
    app.command("compare")(compare_command)
    app.command("run-all")(run_all_command)
    app.command("report-compare")(report_compare_command)
