"""CLI: ``nadfit sbc`` (simulation-based calibration), ``nadfit recovery`` (parameter recovery)
and ``nadfit sweep`` (many fits on Dask distributed)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


def _progress(console: Console):
    def on_done(entry: dict, k: int, n: int) -> None:
        status = entry["status"]
        colour = {"done": "green", "failed": "red"}.get(status, "yellow")
        wall = entry.get("task_wall_s")
        extra = f" {wall:.1f} s" if wall is not None else ""
        if status == "failed":
            extra += f" ({entry.get('error', '')[:120]})"
        console.print(f"[{k}/{n}] {entry['id']} [{colour}]{status}[/{colour}]{extra} "
                      f"(at {entry.get('finished_s', 0):.1f} s)", highlight=False)

    return on_done


def sweep_command(
    spec: Path = typer.Argument(..., help="sweep spec (TOML or YAML)"),
    out: Path = typer.Option(..., "--out", help="output folder (one sub-folder per task + sweep.json)"),
    workers: int = typer.Option(2, help="local worker processes (one core each)"),
    address: Optional[str] = typer.Option(None, help="Dask scheduler address (tcp://host:8786) instead of a local cluster"),
) -> None:
    """Run every fit of a sweep spec in parallel; finished tasks are skipped on a re-run."""
    from fitting.sweep import load_spec, run_sweep

    s = load_spec(spec)
    console = Console(stderr=True)
    console.print(f"nadfit sweep: {len(s.tasks)} tasks -> {out}", highlight=False)
    m = run_sweep(s, out, workers=workers, address=address, on_done=_progress(console))
    console.print(f"done {m['n_done']}, skipped {m['n_skipped']}, failed {m['n_failed']} "
                  f"in {m['wall_time_s']:.1f} s; manifest {Path(out) / 'sweep.json'}", highlight=False)
    if m["n_failed"]:
        raise typer.Exit(1)


def sbc_command(
    hypothesis: str = typer.Option("mixed", help="direct | via-nr | mixed"),
    n_sims: int = typer.Option(..., "--n-sims", help="number of simulations"),
    out: Path = typer.Option(..., "--out", help="output folder (sbc.json, sbc_ranks.png, sim-NNNN/)"),
    draws: int = typer.Option(500, help="posterior draws per chain"),
    tune: int = typer.Option(500, help="tuning steps per chain"),
    chains: int = typer.Option(2, help="chains per fit"),
    rank_draws: int = typer.Option(99, "--rank-draws", help="L: thinned posterior draws the truth is ranked among"),
    seed: int = typer.Option(20261122, help="base seed (simulation i uses SeedSequence([seed, i]))"),
    workers: int = typer.Option(2, help="local worker processes"),
    address: Optional[str] = typer.Option(None, help="Dask scheduler address instead of a local cluster"),
) -> None:
    """Simulation-based calibration (Talts et al. 2018) of one hypothesis."""
    from datasets.errors import UserError
    from fitting.calibration import run_sbc
    from models.hypotheses import get_hypothesis

    get_hypothesis(hypothesis)
    for name, v, lo in (("n-sims", n_sims, 1), ("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1),
                        ("rank-draws", rank_draws, 1), ("workers", workers, 1)):
        if v < lo:
            raise UserError(f"--{name} must be >= {lo}, got {v}", field=name)
    console = Console(stderr=True)
    doc = run_sbc(hypothesis, n_sims, out, draws=draws, tune=tune, chains=chains, rank_draws=rank_draws, seed=seed,
                  workers=workers, address=address, on_done=_progress(console))
    bad = [k for k, v in doc["uniformity_pass"].items() if not v]
    Console().print(f"SBC {hypothesis}: {doc['n_sims']} simulations ({len(doc['failed_sims'])} failed), "
                    f"{doc['bins']} bins, {doc['pass_rule']}; "
                    + ("all parameters uniform" if not bad else f"NOT uniform: {', '.join(bad)}")
                    + f"; {Path(out) / 'sbc.json'}", highlight=False)


def recovery_command(
    hypothesis: str = typer.Option("mixed", help="direct | via-nr | mixed"),
    out: Path = typer.Option(..., "--out", help="output folder (recovery.json)"),
    truth: str = typer.Option("median", help="median (prior medians) | draw (one prior draw)"),
    draws: int = typer.Option(500, help="posterior draws per chain"),
    tune: int = typer.Option(500, help="tuning steps per chain"),
    chains: int = typer.Option(2, help="chains"),
    seed: int = typer.Option(20261122, help="seed"),
) -> None:
    """Parameter recovery: simulate evidence at a known truth, fit it, check 94 % interval coverage."""
    from fitting.calibration import run_recovery
    from fitting.fit import FitConfig

    cfg = FitConfig(hypothesis=hypothesis, draws=draws, tune=tune, chains=chains, seed=seed).validate()
    doc = run_recovery(hypothesis, out, truth=truth, cfg=cfg, seed=seed)
    c = Console()
    for k in doc["key_parameters"]:
        r = doc["parameters"][k]
        c.print(f"{k:14s} truth {r['truth']:.4g}  94% [{r['low']:.4g}, {r['high']:.4g}]  "
                f"contraction {r['contraction']:.2f}  {'identifiable' if r['identifiable'] else 'weakly identified'}"
                f"  {'covered' if r['covered'] else 'MISSED'}", highlight=False)
    c.print(f"recovery {'passed' if doc['passed'] else 'FAILED'}: {len(doc['covered_key_parameters'])}/"
            f"{len(doc['identifiable_key_parameters'])} identifiable key parameters covered", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
    app.command("sbc")(sbc_command)
    app.command("recovery")(recovery_command)
