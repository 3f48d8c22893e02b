"""``nadfit report`` and ``nadfit predict``.

* ``nadfit report RUN_DIR [--out FILE [--force]] [--quiet|--verbose]`` — self-contained HTML report
  of one run (default ``RUN_DIR/report.html``, rewritten on each call; another existing file only with
  ``--force``); one progress line per step on stderr.
* ``nadfit predict RUN_DIR --compound NMN|NR --dose X [--dose-unit mg/day|g/day] [--doses-per-day K] --days D
  [--matrix whole_blood|serum|blood_unspecified] [--json]`` — blood NAD+ fold change for a new
  regimen (JSON shape in :mod:`nadfit.fitting.inference.predict`).
* ``nadfit plan-trial RUN_DIR RUN_DIR... --arm COMPOUND:MG[:DOSES] ... [--days D] [--per-arm N ...]
  [--trials T] [--json]`` — how strongly a planned placebo-controlled trial would be expected to
  favour the true uptake hypothesis (:mod:`nadfit.fitting.comparison.designs`).

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
from nadfit.fitting.comparison.designs import ARM_SIZES, N_TRIALS


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


def plan_trial_cmd(
    runs: list[Path] = typer.Argument(..., help="run folders of two or more hypotheses (e.g. runs/main/fits/*)"),
    arm: list[str] = typer.Option(..., "--arm", help="an active arm besides placebo, COMPOUND:MG_PER_DAY[:DOSES_PER_DAY] "
                                                     "(e.g. NMN:500, NR:1000:2); repeat for each arm"),
    days: int = typer.Option(30, "--days", help=f"{DAYS_HELP}; whole-blood NAD+ is read at the end of this day"),
    per_arm: Optional[list[int]] = typer.Option(None, "--per-arm", help="people per arm (repeat to compare sizes; "
                                                                         "default " + " and ".join(map(str, ARM_SIZES))
                                                                         + ", as in the comparison)"),
    trials: int = typer.Option(N_TRIALS, "--trials", help="simulated trials per hypothesis (default as in the "
                                                          "comparison)"),
    allow_failed: bool = typer.Option(False, "--accept-failed-gates", help="accept runs whose diagnostics gates failed"),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Could a planned trial tell the uptake hypotheses apart? Expected log Bayes factors per pair."""
    from nadfit.fitting.comparison.designs import parse_arm, plan_trial

    arms = [parse_arm(a) for a in arm]
    # plan_trial checks every option before it reads a run folder
    res = plan_trial(runs, arms, days, tuple(per_arm) if per_arm else ARM_SIZES, trials, allow_failed=allow_failed)
    from nadfit.fitting.inference.regimen import dose_plausibility

    for a in arms:  # after the runs were read: a wrong folder is the one line a mistake gives
        note = dose_plausibility(a.compound, a.mg_per_day)
        if note:
            print(f"nadfit: warning: {note}", file=sys.stderr)
    if as_json:
        from nadfit.fitting.comparison.pipeline import clean_json

        print(json.dumps(clean_json(res), indent=2, allow_nan=False))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(file=sys.stdout, width=140)
    (d,) = res["designs"]
    hyps = list(d["arms"][0]["fold_change_mean_effect"])
    t = Table(title=f"Predicted whole-blood NAD+ fold change at day {res['day']} (population mean; median, 90 %)")
    t.add_column("arm (vs placebo)")
    for h in hyps:
        t.add_column(h, justify="right")
    for a in d["arms"]:
        t.add_row(a["label"], *(f"{q['median']:.2f} ({q['q05']:.2f}–{q['q95']:.2f})"
                                for q in (a["fold_change_mean_effect"][h] for h in hyps)))
    console.print(t)
    for blk in d["by_arm_size"]:
        t = Table(title=f"{blk['arm_size']} per arm: expected log Bayes factor (nats) for the true hypothesis "
                        f"(row) over the other (column), ± MC error over the trials; the same from each half of "
                        f"the draws; share of trials favouring the true one")
        t.add_column("true ↓")
        for h in hyps:
            t.add_column(h, justify="right")
        for tr in hyps:
            row = blk["expected_log_bf"][tr]
            t.add_row(tr, *("–" if h == tr else f"{row[h]['mean']:.2f} ± {row[h]['mcse']:.2f} "
                            f"(halves {row[h]['halves'][0]:.2f}, {row[h]['halves'][1]:.2f}; "
                            f"{100 * row[h]['p_favours_true']:.0f} %)" for h in hyps))
        console.print(t)
        console.print("  " + "; ".join(f"{p['hypotheses'][0]} vs {p['hypotheses'][1]}: {p['verdict']} "
                                       f"({p['weaker_expected_log_bf']:.2f})" for p in blk["pairs"]))
    console.print(f"(positive from {res['positive_nats']:g} nat, strong from {res['strong_nats']:g}, in the "
                  "weaker direction; within the model: blood NAD+ only)")


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
    app.command("predict")(predict_cmd)
    app.command("plan-trial")(plan_trial_cmd)
