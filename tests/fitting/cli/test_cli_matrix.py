"""Every command and every option that changes its code path, executed once on tiny settings.

A NameError or a broken import on any of these paths fails the default suite (issue #19). NUTS
itself is replaced by prior draws shaped as nutpie's output (``tests/fitting/stub_sampler.py``):
nutpie is exercised by the reference-posterior and benchmark tests; here every step *around*
sampling runs for real (model build, gates, run folder, prior/posterior predictive, curves, LOO,
stacking, LOSO, bridge sampling, SMC, power-scaling, exact refits, reports, prediction, SBC and
recovery aggregation, sweeps on a Dask scheduler given by address).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nadfit.fitting.cli import main
from tests.fitting.stub_sampler import prior_as_posterior

#: a small evidence selection with every observation kind but one (human arm means, t vs placebo,
#: a paired p-value, a CV extreme, a bound, an approximate time, qualitative findings)
EVIDENCE = "airhart2017,hara2019,yi2022,yi2022_posthoc,grozio2019,berven2025"
TINY = ["--draws", "12", "--tune", "0", "--chains", "2"]
STUDIES = Path(__file__).resolve().parents[3] / "datasets" / "studies"


@pytest.fixture(scope="module")
def stubbed(tmp_path_factory):
    """Prior draws instead of NUTS; JAX's persistent compilation cache on (as for users of the
    CLI), so programs that repeat across fits are compiled once."""
    from nadfit.fitting.calibration import confusion
    from nadfit.fitting.inference import fit

    mp = pytest.MonkeyPatch()
    mp.setattr(fit, "sample_posterior", prior_as_posterior)
    mp.setattr(confusion, "sample_posterior", prior_as_posterior)
    mp.setenv("NADFIT_JAX_CACHE", str(tmp_path_factory.mktemp("jax-cache")))
    yield
    mp.undo()


def run(capsys, *argv) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.fixture(scope="module")
def main_job(stubbed, tmp_path_factory):
    """``run-all --wider`` on the small selection: fits x3, wider refits x3, compare, reports."""
    out = tmp_path_factory.mktemp("cli") / "main"
    rc = main(["run-all", "--out", str(out), *TINY, "--wider", "--evidence", EVIDENCE, "--smc-runs", "0"])
    assert rc == 0
    return out


def test_quick_settings_reach_every_fit():
    from nadfit.fitting.inference.config import QUICK, make_config

    cfg = make_config(None, quick=True, hypothesis="direct")
    assert all(getattr(cfg, k) == v for k, v in QUICK.items())


def test_run_all_wider(main_job):
    cmp = json.loads((main_job / "comparison" / "comparison.json").read_text())
    assert set(cmp["loo"]) == {"direct", "via-nr", "mixed"}
    assert cmp["sensitivity"]["wider_prior_factor"] == 2.0 and cmp["sensitivity"]["wider_prior_best"] in cmp["loo"]
    for h in ("direct", "via-nr", "mixed"):
        assert (main_job / "fits" / h / "report.html").stat().st_size > 0
        assert (main_job / "fits-wider-priors" / h / "summary.json").exists()
    assert (main_job / "comparison" / "comparison.html").exists()


@pytest.mark.parametrize("options", [
    # SMC (blackjax, HMC moves) compiles its stage program per model and runs many gradient
    # evaluations even with 20 particles: opt-in in the product, so its CLI path is a slow test
    # (the estimator itself is validated in tests/fitting/comparison/test_marginal.py)
    pytest.param(["--smc-runs", "1", "--smc-draws", "20"], marks=pytest.mark.slow),
    ["--smc-runs", "0", "--wider-runs", "WIDER/direct", "--wider-runs", "WIDER/mixed"],
    ["--no-bridge", "--no-psense", "--smc-runs", "0", "--reloo", "--reloo-draws", "6"],
], ids=["smc", "wider", "no-bridge+no-psense+reloo"])
def test_compare_paths(capsys, main_job, tmp_path, monkeypatch, options):
    from nadfit.fitting.comparison import assemble

    hyps = ("direct", "mixed")
    fits = [main_job / "fits" / h for h in hyps]
    refitted = []
    if "--reloo" in options:  # the whole refit loop runs, with one real exact refit per hypothesis
        real = assemble.exact_refit_elpd

        def one_refit_each(run, ids, **kwargs):
            refitted.append((run.hypothesis, tuple(ids)))
            return real(run, ids[:1], **kwargs)

        monkeypatch.setattr(assemble, "exact_refit_elpd", one_refit_each)
    options = [o.replace("WIDER", str(main_job / "fits-wider-priors")) for o in options]
    rc, out, err = run(capsys, "compare", *fits, "--out", tmp_path / "cmp", "--accept-failed-gates", *options)
    assert rc == 0, err
    cmp = json.loads((tmp_path / "cmp" / "comparison.json").read_text())
    if "--reloo" in options:
        assert refitted and set(cmp["reloo"]) == {h for h, _ in refitted} and not cmp.get("bridge")
        assert all(len(v) == 1 for v in cmp["reloo"].values())
    elif "--wider-runs" in options:
        assert cmp["bridge"] and cmp["sensitivity"]["wider_prior_elpd"] and not cmp.get("smc")
    else:
        assert cmp["smc"] and cmp["bridge"]
    assert "Verdict" in out


def test_compare_with_calibration_file_and_report_compare(capsys, main_job, tmp_path):
    cal = tmp_path / "cal"
    rc, _, err = run(capsys, "compare-calibration", "--out", cal, "--reps", "1", "--draws", "6", "--tune", "0",
                     "--chains", "1", "--hypothesis", "direct,mixed")
    assert rc == 0, err
    fits = [main_job / "fits" / h for h in ("direct", "mixed")]
    rc, _, err = run(capsys, "compare", *fits, "--out", tmp_path / "cmp", "--accept-failed-gates", "--no-bridge",
                     "--smc-runs", "0", "--no-psense", "--calibration", cal / "calibration.json")
    assert rc == 0, err
    rc, out, err = run(capsys, "report-compare", tmp_path / "cmp", "--out", tmp_path / "c.html")
    assert rc == 0 and (tmp_path / "c.html").stat().st_size > 0, err


def test_fit_config_evidence_exclude(capsys, stubbed, tmp_path):
    cfg = tmp_path / "fit.toml"
    cfg.write_text('hypothesis = "direct"\nprior_draws = 10\n')
    rc, out, err = run(capsys, "fit", "--config", cfg, "--hypothesis", "via-nr", "--evidence", EVIDENCE,
                       "--exclude", "hara2019", *TINY, "--accept-failed-gates", "--out", tmp_path / "run")
    assert rc == 0, err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["hypothesis"] == "via-nr"  # the option overrides the config file
    assert not any(e.startswith("EV21") and e in ("EV210",) for e in summary["evidence_ids"])
    ev = json.loads((tmp_path / "run" / "config.json").read_text())
    assert ev["exclude"] == ["hara2019"] and ev["prior_draws"] == 10


def test_report_and_predict(capsys, main_job, tmp_path):
    run_dir = main_job / "fits" / "mixed"
    rc, out, err = run(capsys, "report", run_dir, "--out", tmp_path / "r.html")
    assert rc == 0 and (tmp_path / "r.html").stat().st_size > 0, err
    assert "report: loading the run" in err and "report: figures, tables and HTML" in err  # progress
    rc, out, err = run(capsys, "predict", run_dir, "--compound", "NMN", "--dose", "500", "--days", "30",
                       "--matrix", "serum", "--json")
    assert rc == 0, err
    res = json.loads(out)
    assert res["matrix"] == "serum" and res["fold_change"]["q05"] <= res["fold_change"]["q95"]
    rc, out, err = run(capsys, "predict", run_dir, "--compound", "NR", "--dose", "300", "--days", "7")
    assert rc == 0 and "population mean effect" in out, err
    fits = main_job / "fits"
    rc, out, err = run(capsys, "plan-trial", fits / "direct", fits / "via-nr", fits / "mixed", "--arm", "NMN:500",
                       "--arm", "NR:500:2", "--days", "14", "--per-arm", "20", "--trials", "100",
                       "--accept-failed-gates", "--json")
    assert rc == 0, err
    res = json.loads(out)
    (d,) = res["designs"]
    assert set(d["by_arm_size"][0]["expected_log_bf"]) == {"direct", "via-nr", "mixed"}
    # the comparison of the main job carries the trial designs
    cmp = json.loads((main_job / "comparison" / "comparison.json").read_text())
    assert [x["key"] for x in cmp["designs"]["designs"]] == ["nmn_dose_ranging", "nmn_vs_nr", "nmn_split_dose",
                                                              "nr_dose_ranging"]


def test_recovery_and_sbc_on_a_scheduler_address(capsys, stubbed, tmp_path):
    """``sbc --address`` and ``sweep --address`` against an in-process scheduler (the stubbed
    sampler reaches its tasks because its workers are threads of this process)."""
    from distributed import LocalCluster

    rc, out, err = run(capsys, "recovery", "--hypothesis", "direct", "--draws", "20", "--tune", "0", "--chains", "1",
                       "--out", tmp_path / "rec")
    assert rc == 0 and (tmp_path / "rec" / "recovery.json").exists(), err
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        rc, out, err = run(capsys, "sbc", "--hypothesis", "direct", "--n-sims", "2", "--draws", "10", "--tune", "0",
                           "--chains", "1", "--rank-draws", "9", "--address", cluster.scheduler_address,
                           "--out", tmp_path / "sbc", "--quiet")
        assert rc == 0 and (tmp_path / "sbc" / "sbc.json").exists(), err
        assert "[1/2]" not in err and "SBC direct" in out  # --quiet: the summary only
        spec = tmp_path / "spec.toml"
        spec.write_text('[[tasks]]\nkind = "echo"\nid = "hello"\nvalue = 3\n')
        rc, out, err = run(capsys, "sweep", spec, "--address", cluster.scheduler_address, "--out", tmp_path / "sw")
        assert rc == 0 and "[1/1] hello" in err, err
    assert json.loads((tmp_path / "sw" / "hello" / "result.json").read_text())["value"] == 3


@pytest.mark.parametrize("argv", [
    ["datasets", "list", "--json"], ["datasets", "list"],
    ["datasets", "show", "yi2022", "--json"], ["datasets", "show", "yi2022"],
    ["datasets", "gaps", "--json"], ["datasets", "gaps", "--priority", "A"],
    ["datasets", "validate", str(STUDIES)],
    ["simulate", "--compound", "NMN", "--dose", "300", "--days", "3", "--json"],
], ids=lambda a: " ".join(a[:3]))
def test_listing_commands(capsys, argv):
    rc, out, err = run(capsys, *argv)
    assert rc == 0 and out.strip(), err
    if "--json" in argv:
        json.loads(out)


def test_every_registered_command_is_in_this_matrix():
    """A new command must be added here (or to the slow suite: bench)."""
    from nadfit.fitting.cli import _register, app

    _register()
    names = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    covered = {"run-all", "compare", "compare-calibration", "report-compare", "fit", "report", "predict",
               "plan-trial", "recovery", "sbc", "sweep", "datasets", "simulate"}
    # bench: tests/fitting/benchmark/test_bench.py; calibrate: tests/fitting/calibration/test_calibrate.py
    # (slow suite: real fits end to end; its option errors are checked below)
    slow_only = {"bench", "calibrate"}
    assert names == covered | slow_only, names ^ (covered | slow_only)


@pytest.mark.parametrize("argv", [("--bf-prior", "direct=0.9"), ("--hypothesis", "mixed", "--sbc-sims", "0"),
                                  ("--hypothesis", "nope"), ("--draws", "0")])
def test_calibrate_option_errors_write_nothing(capsys, tmp_path, argv):
    rc, _, err = run(capsys, "calibrate", "--out", tmp_path / "cal", *argv)
    assert rc == 2 and err.count("\n") == 1 and err.startswith("nadfit: error:"), err
    assert not (tmp_path / "cal").exists()
