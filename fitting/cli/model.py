"""``nadfit simulate`` (trajectories of one regimen) and ``nadfit bench`` (the inference benchmark)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from nadfit.fitting.cli.options import (
    COMPOUND_HELP,
    DAYS_HELP,
    DOSE_HELP,
    DOSE_UNIT_HELP,
    DOSES_PER_DAY_HELP,
    HYPOTHESIS_HELP,
    JSON_HELP,
    ForceFile,
    dose_mg_per_day,
)


def simulate_cmd(
    hypothesis: str = typer.Option("mixed", help=HYPOTHESIS_HELP),
    compound: str = typer.Option(..., help=COMPOUND_HELP),
    dose: float = typer.Option(..., "--dose", help=DOSE_HELP),
    dose_unit: str = typer.Option("mg/day", "--dose-unit", help=DOSE_UNIT_HELP),
    doses_per_day: int = typer.Option(1, "--doses-per-day", help=DOSES_PER_DAY_HELP),
    days: int = typer.Option(..., help=f"{DAYS_HELP}; trajectories from day 0 to this day (whole days)"),
    params: Optional[Path] = typer.Option(None, "--params", help="JSON file: parameter name -> value"),
    method: str = typer.Option("production", help="production | full | both"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    plot: Optional[Path] = typer.Option(None, "--plot", help="write a PNG of the trajectories"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing --plot file"),
) -> None:
    """Simulate one regimen: daily blood NAD+, NAMPT and tissue NAD+ trajectories."""
    from nadfit.fitting.inference.regimen import dose_plausibility, validate_regimen

    # cheap checks before JAX is imported (5-6 s)
    dose_mg = dose_mg_per_day(dose, dose_unit)
    comp, dose_mg, _k, _d = validate_regimen(compound, dose_mg, doses_per_day, days, day_option="--days")
    note = dose_plausibility(comp, dose_mg)
    if note:
        print(f"nadfit: warning: {note}", file=sys.stderr)
    from nadfit.fitting.inference.simulate import format_simulation, plot_simulation, simulate
    from nadfit.fitting.storage.outputs import check_output_file

    if plot:
        check_output_file(plot, force=force, inputs=[params] if params else ())
    out = simulate(hypothesis, compound, dose_mg, doses_per_day, days, params, method)
    if plot:
        plot_simulation(out, plot)
    print(json.dumps(out, indent=1) if as_json else format_simulation(out))


def bench_cmd(
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
    quick: bool = typer.Option(False, "--quick", help="JSON-shape check, not a benchmark: 1 chain, 20+20 draws, trees "
                                           "capped at depth 4, pm_ode capped at 5 s (~1 min)"),
    out: Optional[Path] = typer.Option(None, "--out", help="also write the JSON result to this file"),
    force: ForceFile = False,
    pm_ode_cap: Optional[float] = typer.Option(None, "--pm-ode-cap", min=0.1,
                                               help="wall-time cap of the pm.ode path in s [300; quick 5]"),
    numpyro_cap: Optional[float] = typer.Option(None, "--numpyro-cap", min=0.0,
                                                help="wall-time cap of the numpyro path in s, 0 = none "
                                                     "[2400; quick 60]"),
    samplers: bool = typer.Option(False, "--compare-samplers",
                                  help="instead: the fit samplers on the real posteriors (default vs nutpie at "
                                       "0.99, all cores vs 1 core; ESS/s, gradients per effective draw)"),
    hypotheses: Optional[list[str]] = typer.Option(None, "--hypothesis",
                                                   help="--compare-samplers, --logp-cost: hypotheses (repeat; "
                                                        "default all three)"),
    logp_cost: bool = typer.Option(False, "--logp-cost",
                                   help="instead: CPU time of one log density + gradient of the full evidence "
                                        "model per hypothesis (single-threaded XLA; with --reference-tree, "
                                        "the ratio to that source tree, measured in the same run)"),
    reference_tree: Optional[Path] = typer.Option(None, "--reference-tree",
                                                  help="--logp-cost: a nadfit source tree to compare with "
                                                       "(e.g. a git worktree of an older commit)"),
) -> None:
    """Benchmark production (averaged JAX + nutpie) vs pm.ode vs numpyro+diffrax on one problem;
    with --compare-samplers, the samplers of 'nadfit fit' on the real posteriors; with --logp-cost,
    the cost of one log density + gradient (and its ratio to a reference source tree)."""
    from nadfit.fitting.storage.outputs import check_output_file, write_text_atomic

    if out:
        check_output_file(out, force=force)  # before the (long) benchmark, not after it
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    if reference_tree is not None and not logp_cost:
        from nadfit.datasets.errors import UserError

        raise UserError("--reference-tree needs --logp-cost", field="reference-tree")
    if logp_cost:
        from nadfit.datasets.errors import UserError
        from nadfit.fitting.benchmark.logp_cost import HYPOTHESES, compare, format_cost

        for h in hypotheses or ():
            if h not in HYPOTHESES:
                raise UserError(f"unknown hypothesis {h!r}; choose one of {', '.join(HYPOTHESES)}", field="hypothesis")
        res = compare(reference_tree, hypotheses=tuple(hypotheses or HYPOTHESES), log=log)
        fmt = format_cost
    elif samplers:
        from nadfit.datasets.errors import UserError
        from nadfit.fitting.benchmark.samplers import HYPOTHESES, format_sampler_report, run_sampler_bench

        for h in hypotheses or ():
            if h not in HYPOTHESES:
                raise UserError(f"unknown hypothesis {h!r}; choose one of {', '.join(HYPOTHESES)}", field="hypothesis")
        res = run_sampler_bench(hypotheses or HYPOTHESES, quick=quick, log=log)
        fmt = format_sampler_report
    else:
        from nadfit.fitting.benchmark.bench import format_report, run_bench

        res = run_bench(quick=quick, pm_ode_cap_s=pm_ode_cap, numpyro_cap_s=numpyro_cap, log=log)
        fmt = format_report
    if out:
        write_text_atomic(Path(out), json.dumps(res, indent=1))
    print(json.dumps(res, indent=1) if as_json else fmt(res))


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate_cmd)
    app.command("bench")(bench_cmd)
