"""CLI: ``nadfit fit``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from nadfit.fitting.cli.options import EVIDENCE_HELP, EXCLUDE_HELP, Quiet, Verbose, split_ids
from nadfit.fitting.cli.progress import FitProgress, check_verbosity
from nadfit.fitting.inference.config import MAX_DRAWS_FACTOR, FitConfig
from nadfit.models.priors import KEY_PARAMETERS
from nadfit.reports.conventions import retry_note

EXIT_GATES_FAILED = 3


def _fmt(value, spec: str) -> str:
    """A number formatted with ``spec``; '–' for a statistic that could not be computed (None/NaN),
    e.g. R-hat of a single chain."""
    return "–" if value is None or value != value else format(value, spec)


def print_fit_summary(summary: dict, console: Console) -> None:
    table = Table(title=f"nadfit fit — hypothesis {summary['hypothesis']} ({summary['status']})")
    for col in ("parameter", "mean", "sd", "89% interval", "ess_bulk", "r_hat"):
        table.add_column(col)
    for name in KEY_PARAMETERS:
        r = summary["parameters"].get(name)
        if r:
            table.add_row(name, _fmt(r["mean"], ".4g"), _fmt(r["sd"], ".3g"),
                          f"[{_fmt(r['ci89_low'], '.3g')}, {_fmt(r['ci89_high'], '.3g')}]",
                          _fmt(r["ess_bulk"], ".0f"), _fmt(r["r_hat"], ".3f"))
    console.print(table)
    for gname, g in summary["gates"].items():
        mark = "[green]pass[/green]" if g["passed"] else "[red]FAIL[/red]"
        console.print(f"gate {gname}: {g['value']} (threshold {g['threshold']}) {mark}")
    note = retry_note(summary.get("attempts"))
    if note:
        console.print(f"note: {note}")
    console.print(f"sampling wall time {summary['wall_time_s']:.1f} s")


def fit_command(
    hypothesis: Optional[str] = typer.Option(None, help="direct | via-nr | mixed [config file's, else mixed]"),
    out: Path = typer.Option(..., "--out", help="run folder to write"),
    evidence: Optional[list[str]] = typer.Option(None, help=EVIDENCE_HELP),
    exclude: Optional[list[str]] = typer.Option(None, help=EXCLUDE_HELP),
    draws: Optional[int] = typer.Option(None, help=f"posterior draws per chain, first batch (default "
                                              f"{FitConfig.draws}; numpyro continues the chains while a "
                                              f"gate fails, up to {MAX_DRAWS_FACTOR} x draws)"),
    tune: Optional[int] = typer.Option(None, help=f"tuning steps per chain (default {FitConfig.tune})"),
    chains: Optional[int] = typer.Option(None, help="chains (default 4)"),
    seed: Optional[int] = typer.Option(None, help="random seed"),
    sampler: Optional[str] = typer.Option(None, help="NUTS implementation: numpyro (default) | nutpie"),
    quick: bool = typer.Option(False, "--quick", help="small run for a first look (2 chains x 300 draws); gates usually fail"),
    config: Optional[Path] = typer.Option(None, help="TOML/YAML config file with FitConfig settings"),
    accept_failed_gates: bool = typer.Option(False, "--accept-failed-gates", help="keep and mark the run usable even if diagnostics fail"),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Fit one uptake hypothesis to the shipped evidence and write DIR/posterior.nc + summary.json."""
    check_verbosity(quiet, verbose)
    from nadfit.fitting.inference.config import make_config
    from nadfit.fitting.storage.outputs import check_output_dir

    cfg = make_config(config, quick=quick, hypothesis=hypothesis, draws=draws, tune=tune, chains=chains, seed=seed,
                      sampler=sampler, evidence=split_ids(evidence) or None, exclude=split_ids(exclude) or None,
                      accept_failed_gates=True if accept_failed_gates else None)
    check_output_dir(out, "run")  # the options and --out are checked before the heavy imports
    from nadfit.fitting.inference.fit import run_fit
    console = Console(stderr=True)
    view = FitProgress(console, quiet=quiet, verbose=verbose)
    try:
        summary = run_fit(cfg, out, on_progress=view.callback(f"fit {cfg.hypothesis}"))
    finally:
        view.close()
    print_fit_summary(summary, Console())
    if summary["status"] == "failed_gates":
        from nadfit.fitting.inference.fit import ADVICE

        console.print(f"[red]nadfit: diagnostics gates failed; the run is marked failed and later commands "
                      f"refuse it unless --accept-failed-gates[/red]\n{ADVICE}")
        raise typer.Exit(EXIT_GATES_FAILED)


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_command)
