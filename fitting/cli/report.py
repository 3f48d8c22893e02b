"""``nadfit report`` and ``nadfit predict``.

* ``nadfit report RUN_DIR [--out FILE [--force]] [--quiet|--verbose]`` — self-contained HTML report
  of one run (default ``RUN_DIR/report.html``, rewritten on each call; another existing file only with
  ``--force``); one progress line per step on stderr.
* ``nadfit predict RUN_DIR --compound NMN|NR --dose X [--dose-unit mg/day|g/day] [--doses-per-day K] --days D
  [--matrix whole_blood|serum|blood_unspecified] [--json]`` — blood NAD+ fold change for a new
  regimen (JSON shape in :mod:`nadfit.fitting.inference.predict`).

User mistakes raise :class:`UserError` (one line on stderr, exit code 2).
"""

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
    JSON_HELP,
    ForceFile,
    Quiet,
    Verbose,
    dose_mg_per_day,
)
from nadfit.fitting.cli.progress import check_verbosity


def report_cmd(
    run_dir: Path = typer.Argument(..., help="run folder written by 'nadfit fit'"),
    out: Optional[Path] = typer.Option(None, "--out", help="output HTML file (default RUN_DIR/report.html)"),
    force: ForceFile = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Write a self-contained HTML report of a fitted run."""
    check_verbosity(quiet, verbose)
    from nadfit.fitting.cli.progress import render_with_steps
    from nadfit.fitting.comparison.pipeline import render_run_report

    render_with_steps("report", "report", lambda log: render_run_report(run_dir, out, force=force, log=log),
                      quiet=quiet)


def predict_cmd(
    run_dir: Path = typer.Argument(..., help="run folder written by 'nadfit fit'"),
    compound: str = typer.Option(..., "--compound", help=COMPOUND_HELP),
    dose: float = typer.Option(..., "--dose", help=DOSE_HELP),
    dose_unit: str = typer.Option("mg/day", "--dose-unit", help=DOSE_UNIT_HELP),
    days: float = typer.Option(..., "--days", help=f"{DAYS_HELP}; the fold change at the end of this "
                                                   "day (fractions allowed)"),
    doses_per_day: int = typer.Option(1, "--doses-per-day", help=DOSES_PER_DAY_HELP),
    matrix: str = typer.Option("whole_blood", "--matrix", help="whole_blood, serum or blood_unspecified"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Predict the blood NAD+ fold change for a new oral NMN/NR regimen from a run's posterior."""
    from nadfit.fitting.inference.predict import predict, validate_options

    dose_mg = dose_mg_per_day(dose, dose_unit)
    comp, dose_mg, *_ = validate_options(compound, dose_mg, days, doses_per_day, matrix)  # before loading
    from nadfit.fitting.inference.regimen import dose_plausibility

    note = dose_plausibility(comp, dose_mg)
    if note:
        print(f"nadfit: warning: {note}", file=sys.stderr)
    res = predict(run_dir, compound, dose_mg, days, doses_per_day, matrix)
    if as_json:
        print(json.dumps(res, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    t = Table(title=(f"{res['compound']} {res['dose_mg']:g} mg/day ({res['doses_per_day']} dose(s)/day), "
                     f"day {res['day']:g}, {res['matrix']} — hypothesis {res['hypothesis']}, "
                     f"{res['n_draws']} posterior draws"))
    t.add_column("NAD+ fold change vs baseline")
    for k in ("median", "q05", "q25", "q75", "q95"):
        t.add_column(k, justify="right")
    for key, label in (("fold_change_mean_effect", "population mean effect"),
                       ("fold_change", "new study (incl. study effect and drift)")):
        t.add_row(label, *(f"{res[key][k]:.3f}" for k in ("median", "q05", "q25", "q75", "q95")))
    ho = res.get("without_non_human_evidence")
    if ho and ho["reliable"]:
        t.add_row(f"population mean effect, human evidence only (reweighted, Pareto k {ho['pareto_k']:.2f})",
                  *(f"{ho['fold_change_mean_effect'][k]:.3f}" for k in ("median", "q05", "q25", "q75", "q95")))
    Console(file=sys.stdout, width=140).print(t)
    if ho and not ho["reliable"]:
        from nadfit.reports.conventions import PARETO_K_BAD

        print(f"without the {len(ho['non_human_studies'])} non-human studies the posterior changes too much to "
              f"reweight (Pareto k {'not estimable' if ho['pareto_k'] is None else format(ho['pareto_k'], '.2f')} "
              f"> {PARETO_K_BAD}); for a human-evidence-only prediction refit with "
              f"--exclude {','.join(ho['non_human_studies'])} (run-all's fits-human-only/mixed)")


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
    app.command("predict")(predict_cmd)
