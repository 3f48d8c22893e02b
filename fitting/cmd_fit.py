"""CLI: ``nadfit fit``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from datasets.errors import UserError

EXIT_GATES_FAILED = 3
KEY_PARAMETERS = ("beta", "gamma", "pi_nmn", "pi_nr", "t_blood_days", "sigma_person", "mu_phi", "tau_phi")


def _split(values: Optional[list[str]]) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [t.strip() for t in v.split(",") if t.strip()]
    return out


def print_fit_summary(summary: dict, console: Console) -> None:
    table = Table(title=f"nadfit fit — hypothesis {summary['hypothesis']} ({summary['status']})")
    for col in ("parameter", "mean", "sd", "89% interval", "ess_bulk", "r_hat"):
        table.add_column(col)
    for name in KEY_PARAMETERS:
        r = summary["parameters"].get(name)
        if r:
            table.add_row(name, f"{r['mean']:.4g}", f"{r['sd']:.3g}", f"[{r['ci89_low']:.3g}, {r['ci89_high']:.3g}]",
                          f"{r['ess_bulk']:.0f}", f"{r['r_hat']:.3f}")
    console.print(table)
    for gname, g in summary["gates"].items():
        mark = "[green]pass[/green]" if g["passed"] else "[red]FAIL[/red]"
        console.print(f"gate {gname}: {g['value']} (threshold {g['threshold']}) {mark}")
    console.print(f"sampling wall time {summary['wall_time_s']:.1f} s")


def fit_command(
    hypothesis: str = typer.Option("mixed", help="direct | via-nr | mixed"),
    out: Path = typer.Option(..., "--out", help="run folder to write"),
    evidence: Optional[list[str]] = typer.Option(None, help="keep only these study/evidence ids (comma-separated)"),
    exclude: Optional[list[str]] = typer.Option(None, help="leave out these study/evidence ids"),
    draws: Optional[int] = typer.Option(None, help="posterior draws per chain (default 1000)"),
    tune: Optional[int] = typer.Option(None, help="tuning steps per chain (default 500)"),
    chains: Optional[int] = typer.Option(None, help="chains (default 4)"),
    seed: Optional[int] = typer.Option(None, help="random seed"),
    quick: bool = typer.Option(False, help="small run for a first look (2 chains x 300 draws); gates usually fail"),
    config: Optional[Path] = typer.Option(None, help="TOML/YAML config file with FitConfig settings"),
    accept_failed_gates: bool = typer.Option(False, help="keep and mark the run usable even if diagnostics fail"),
) -> None:
    """Fit one uptake hypothesis to the shipped evidence and write DIR/posterior.nc + summary.json."""
    from fitting.fit import QUICK, FitConfig, config_from_file, run_fit

    cfg = config_from_file(config) if config else FitConfig()
    if quick:
        for k, v in QUICK.items():
            setattr(cfg, k, v)
    if not config or hypothesis != "mixed":
        cfg.hypothesis = hypothesis
    for name, val in (("draws", draws), ("tune", tune), ("chains", chains), ("seed", seed)):
        if val is not None:
            setattr(cfg, name, val)
    if evidence:
        cfg.evidence = _split(evidence)
    if exclude:
        cfg.exclude = _split(exclude)
    if accept_failed_gates:
        cfg.accept_failed_gates = True
    cfg.validate()
    console = Console(stderr=True)
    summary = run_fit(cfg, out, progress=console.is_terminal)
    print_fit_summary(summary, Console())
    if summary["status"] == "failed_gates":
        from fitting.fit import ADVICE

        console.print(f"[red]nadfit: diagnostics gates failed; the run is marked failed and later commands "
                      f"refuse it unless --accept-failed-gates[/red]\n{ADVICE}")
        raise typer.Exit(EXIT_GATES_FAILED)


def register(app: typer.Typer) -> None:
    app.command("fit")(fit_command)
