"""``nadfit calibrate`` (the full calibration: SBC, confusion matrices, Bayes-factor calibration,
out-of-study coverage, recovery), ``nadfit sbc`` (simulation-based calibration), ``nadfit
recovery`` (parameter recovery) and ``nadfit compare-calibration`` (confusion matrix of the
comparison)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from nadfit.datasets.errors import UserError
from nadfit.fitting.calibration.calibrate import FULL_SIZES
from nadfit.fitting.calibration.sbc import (
    CALIBRATION_CHAINS,
    CALIBRATION_DRAWS,
    CALIBRATION_SEED,
    CALIBRATION_TUNE,
    DEFAULT_RANK_DRAWS,
)
from nadfit.fitting.cli.options import (
    HYPOTHESIS_HELP,
    SEED_HELP,
    Address,
    Quiet,
    Verbose,
    Workers,
)
from nadfit.fitting.cli.progress import check_verbosity
from nadfit.fitting.cli.sweep import progress_printer


def sbc_command(
    hypothesis: str = typer.Option("mixed", help=HYPOTHESIS_HELP),
    n_sims: int = typer.Option(..., "--n-sims", help="number of simulations"),
    out: Path = typer.Option(..., "--out", help="output folder (sbc.json, sbc_ranks.png, sim-NNNN/)"),
    draws: int = typer.Option(CALIBRATION_DRAWS, help="posterior draws per chain"),
    tune: int = typer.Option(CALIBRATION_TUNE, help="tuning steps per chain"),
    chains: int = typer.Option(CALIBRATION_CHAINS, help="chains per fit"),
    rank_draws: int = typer.Option(DEFAULT_RANK_DRAWS, "--rank-draws", help="L: thinned posterior draws the truth is ranked among"),
    seed: int = typer.Option(CALIBRATION_SEED, help=f"{SEED_HELP} (simulation i uses SeedSequence([seed, i]))"),
    workers: Workers = 2,
    address: Address = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Simulation-based calibration (Talts et al. 2018) of one hypothesis."""
    check_verbosity(quiet, verbose)
    from nadfit.models.hypotheses import get_hypothesis

    get_hypothesis(hypothesis)  # option checks before the heavy imports
    for name, v, lo in (("n-sims", n_sims, 1), ("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1),
                        ("rank-draws", rank_draws, 1), ("workers", workers, 1)):
        if v < lo:
            raise UserError(f"--{name} must be >= {lo}, got {v}", field=name)
    from nadfit.fitting.calibration.sbc import run_sbc

    console = Console(stderr=True)
    doc = run_sbc(hypothesis, n_sims, out, draws=draws, tune=tune, chains=chains, rank_draws=rank_draws, seed=seed,
                  workers=workers, address=address, on_done=None if quiet else progress_printer(console))
    bad = [k for k, v in doc["uniformity_pass"].items() if not v]
    Console().print(f"SBC {hypothesis}: {doc['n_sims']} simulations ({len(doc['failed_sims'])} failed), "
                    f"{doc['bins']} bins, {doc['pass_rule']}; "
                    + ("all parameters uniform" if not bad else f"NOT uniform: {', '.join(bad)}")
                    + f"; {Path(out) / 'sbc.json'}", highlight=False)


def recovery_command(
    hypothesis: str = typer.Option("mixed", help=HYPOTHESIS_HELP),
    out: Path = typer.Option(..., "--out", help="output folder (recovery.json)"),
    truth: str = typer.Option("median", help="median (prior medians) | draw (one prior draw)"),
    draws: int = typer.Option(CALIBRATION_DRAWS, help="posterior draws per chain"),
    tune: int = typer.Option(CALIBRATION_TUNE, help="tuning steps per chain"),
    chains: int = typer.Option(CALIBRATION_CHAINS, help="chains per fit"),
    seed: int = typer.Option(CALIBRATION_SEED, help=SEED_HELP),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Parameter recovery: simulate evidence at a known truth, fit it, check 94 % interval coverage."""
    check_verbosity(quiet, verbose)
    from nadfit.models.hypotheses import get_hypothesis

    get_hypothesis(hypothesis)  # before the heavy imports
    from nadfit.fitting.calibration.sbc import run_recovery
    from nadfit.fitting.inference.config import FitConfig

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


def compare_calibration_command(
    out: Path = typer.Option(..., "--out", help="folder for calibration.json"),
    reps: int = typer.Option(2, help="replicates per generating hypothesis"),
    draws: int = typer.Option(300, help="draws per chain of each fit"),
    tune: int = typer.Option(300, help="tuning steps per chain"),
    chains: int = typer.Option(CALIBRATION_CHAINS, help="chains per fit"),
    seed: int = typer.Option(7, help=SEED_HELP),
    hypotheses: Optional[list[str]] = typer.Option(None, "--hypothesis",
                                                   help="hypotheses to generate from and fit (comma-separated "
                                                        "or repeated) [direct,via-nr,mixed]"),
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Confusion matrix: how often LOO picks the hypothesis that generated synthetic evidence."""
    check_verbosity(quiet, verbose)
    from nadfit.fitting.cli.options import split_ids
    from nadfit.models.hypotheses import HYPOTHESES, get_hypothesis

    hyps = split_ids(hypotheses) or list(HYPOTHESES)
    for h in hyps:
        get_hypothesis(h)
    if len(set(hyps)) < 2:
        raise UserError("--hypothesis needs at least two different hypotheses", field="hypothesis")

    for name, v in (("reps", reps), ("draws", draws), ("chains", chains)):
        if v < 1:
            raise UserError(f"--{name} must be at least 1", field=name)
    if tune < 0 or seed < 0:
        raise UserError("--tune and --seed must be non-negative", field="tune")
    from nadfit.fitting.calibration.confusion import run_confusion

    res = run_confusion(out, reps=reps, draws=draws, tune=tune, chains=chains, seed=seed, hypotheses=hyps,
                        log=(lambda *_a, **_k: None) if quiet else Console(stderr=True).print)
    t = Table(title=f"LOO picks (rows: generating hypothesis; {reps} replicates each)")
    hs = list(res["confusion"])
    t.add_column("generated by")
    for h in hs:
        t.add_column(h)
    for g in hs:
        t.add_row(g, *[str(res["confusion"][g][h]) for h in hs])
    Console().print(t)
    Console().print(f"recovery rate {res['recovery_rate']:.2f}")


def calibrate_command(
    out: Path = typer.Option(..., "--out", help="output folder (calibration.json, calibration.html, one folder per task); "
                                               "an interrupted run resumes in the same folder"),
    hypotheses: Optional[list[str]] = typer.Option(None, "--hypothesis",
                                                   help="hypotheses to generate from and fit (comma-separated "
                                                        "or repeated; default all three)"),
    sbc_sims: int = typer.Option(FULL_SIZES["sbc_sims"], "--sbc-sims", help="SBC simulations per hypothesis (0: skip)"),
    compare_reps: int = typer.Option(FULL_SIZES["compare_reps"], "--compare-reps", help="confusion-matrix replicates per generating hypothesis"),
    misspec_reps: int = typer.Option(FULL_SIZES["misspec_reps"], "--misspec-reps", help="the same with a misspecified observation model"),
    bf_sims: int = typer.Option(FULL_SIZES["bf_sims"], "--bf-sims", help="Bayes-factor calibration replicates (0: skip)"),
    bf_prior: Optional[str] = typer.Option(None, "--bf-prior", help="prior model probabilities, e.g. "
                                                                    "direct=0.25,via-nr=0.25,mixed=0.5 [equal]"),
    no_loso: bool = typer.Option(False, "--no-loso", help="skip the out-of-study coverage (one refit per human study "
                                                             "with quantitative rows)"),
    loso_hypothesis: str = typer.Option("mixed", "--loso-hypothesis", help="hypothesis of the out-of-study refits"),
    loso_studies: Optional[list[str]] = typer.Option(None, "--loso-studies", help="studies to leave out "
                                                     "(comma-separated) [every human study with quantitative rows]"),
    recovery_truths: int = typer.Option(FULL_SIZES["recovery_truths"], "--recovery-truths", help="recovery truths (prior draws) per hypothesis"),
    draws: int = typer.Option(CALIBRATION_DRAWS, help="posterior draws per chain of every fit"),
    tune: int = typer.Option(CALIBRATION_TUNE, help="tuning steps per chain"),
    chains: int = typer.Option(CALIBRATION_CHAINS, help="chains per fit"),
    rank_draws: int = typer.Option(DEFAULT_RANK_DRAWS, "--rank-draws", help="SBC: thinned posterior draws the truth is ranked among"),
    seed: int = typer.Option(CALIBRATION_SEED, help="base seed"),
    workers: int = typer.Option(2, help="local worker processes"),
    address: Optional[str] = typer.Option(None, help="Dask scheduler address instead of a local cluster"),
) -> None:
    """Calibrate inference and comparison (issue #17): SBC, confusion matrices, Bayes-factor
    calibration, out-of-study coverage and recovery, on the sweep engine."""
    from nadfit.fitting.calibration.calibrate import parse_prior, run_calibration
    from nadfit.fitting.cli.options import split_ids
    from nadfit.models.hypotheses import HYPOTHESES, get_hypothesis

    hyps = split_ids(hypotheses) or list(HYPOTHESES)
    for h in hyps + [loso_hypothesis]:
        get_hypothesis(h)
    if len(set(hyps)) != len(hyps):
        raise UserError("--hypothesis names a hypothesis twice", field="hypothesis")
    if (compare_reps or misspec_reps or bf_sims) and len(hyps) < 2:
        raise UserError("comparison calibration needs at least two hypotheses", field="hypothesis")
    for name, v, lo in (("sbc-sims", sbc_sims, 0), ("compare-reps", compare_reps, 0), ("misspec-reps", misspec_reps, 0),
                        ("bf-sims", bf_sims, 0), ("recovery-truths", recovery_truths, 0), ("draws", draws, 1),
                        ("tune", tune, 0), ("chains", chains, 1), ("rank-draws", rank_draws, 1), ("workers", workers, 1),
                        ("seed", seed, 0)):
        if v < lo:
            raise UserError(f"--{name} must be >= {lo}, got {v}", field=name)
    console = Console(stderr=True)
    doc = run_calibration(out, hyps, workers=workers, address=address, on_done=progress_printer(console),
                          sbc_sims=sbc_sims, compare_reps=compare_reps, misspec_reps=misspec_reps, bf_sims=bf_sims,
                          bf_prior=parse_prior(bf_prior, hyps), loso=not no_loso, loso_hypothesis=loso_hypothesis,
                          loso_studies=split_ids(loso_studies) or None, recovery_truths=recovery_truths, draws=draws,
                          tune=tune, chains=chains, rank_draws=rank_draws, seed=seed)
    c = Console()
    for h, s in doc["sbc"].items():
        c.print(f"SBC {h}: {s['n_sims']} simulations; " + ("uniform" if s["all_pass"] else
                                                           f"NOT uniform: {', '.join(s['failed'])}"), highlight=False)
    for key in ("confusion", "confusion_misspecified"):
        if key in doc:
            r = doc[key]["recovery"]
            c.print(f"{key}: generating hypothesis picked {r['k']}/{r['n']} (95 % {r['low']:.2f}-{r['high']:.2f})",
                    highlight=False)
    if "bf_calibration" in doc:
        c.print("BF calibration: " + ", ".join(f"{h} mean p {v['mean_posterior']:.2f} vs prior {v['prior']:.2f}"
                                               for h, v in doc["bf_calibration"]["hypotheses"].items()), highlight=False)
    if "coverage" in doc:
        c.print("out-of-study coverage: " + ", ".join(f"{k} {v['k']}/{v['n']}" for k, v in
                                                      doc["coverage"]["table"]["overall"].items()), highlight=False)
    for h, r in doc["recovery"].items():
        ci = r["coverage_identifiable"]
        c.print(f"recovery {h}: {ci['k']}/{ci['n']} identifiable intervals cover the truth", highlight=False)
    if doc["failed_tasks"]:
        c.print(f"{len(doc['failed_tasks'])} tasks failed (see {Path(out) / 'sweep.json'})", highlight=False)
    c.print(f"{Path(out) / 'calibration.json'}, {Path(out) / 'calibration.html'}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate_command)
    app.command("sbc")(sbc_command)
    app.command("recovery")(recovery_command)
    app.command("compare-calibration")(compare_calibration_command)
