"""``nadfit sweep``: many fits on Dask distributed (local cluster or a scheduler address)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from nadfit.fitting.cli.options import Address, Quiet, Verbose, Workers
from nadfit.fitting.cli.progress import check_verbosity


def progress_printer(console: Console):
    """A sweep ``on_done`` callback printing one line per finished task."""
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
    workers: Workers = 2,
    address: Address = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Run every fit of a sweep spec in parallel; finished tasks are skipped on a re-run."""
    check_verbosity(quiet, verbose)
    from nadfit.fitting.storage.outputs import check_output_dir
    from nadfit.fitting.sweep.engine import load_spec, run_sweep

    s = load_spec(spec)
    check_output_dir(out, "sweep", inputs=[spec])  # a refused --out is the only line printed
    console = Console(stderr=True)
    if not quiet:
        console.print(f"nadfit sweep: {len(s.tasks)} tasks -> {out}", highlight=False)
    m = run_sweep(s, out, workers=workers, address=address, on_done=None if quiet else progress_printer(console))
    console.print(f"done {m['n_done']}, skipped {m['n_skipped']}, failed {m['n_failed']} "
                  f"in {m['wall_time_s']:.1f} s; manifest {Path(out) / 'sweep.json'}", highlight=False)
    if m["n_failed"]:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep_command)
