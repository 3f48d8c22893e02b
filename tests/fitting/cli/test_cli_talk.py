"""How the commands talk (issue #18, parts 1 and 4): no third-party warnings reaching the user,
progress per fit and per report step, --quiet/--verbose (help texts and option names:
test_cli_vocabulary.py)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from rich.console import Console

REPO = Path(__file__).resolve().parents[3]


def _all_commands():
    """(command path, click command) of every leaf command (one walker: test_cli_vocabulary)."""
    from tests.fitting.cli.test_cli_vocabulary import all_commands

    return all_commands()


def test_warning_policy_hides_only_the_listed_warnings_and_only_inside_main(capsys):
    from nadfit.fitting.cli import UNDERSTOOD_WARNINGS, apply_warning_policy

    assert all(why.strip() for *_rest, why in UNDERSTOOD_WARNINGS)
    g = {"__name__": "nadfit.fitting.inference.fit"}
    code = ("import warnings\n"
            "warnings.warn('The effect of Potentials on other parameters is ignored during prior predictive "
            "sampling. x', UserWarning)\n"
            "warnings.warn('something else', UserWarning)\n")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        apply_warning_policy()
        exec(code, g)
    assert [str(w.message) for w in seen] == ["something else"]
    with warnings.catch_warnings(record=True) as seen:  # outside the CLI: every warning is seen
        warnings.simplefilter("always")
        exec(code, g)
    assert len(seen) == 2


def test_quiet_and_verbose_together_is_a_usage_error(capsys, tmp_path):
    from nadfit.fitting.cli import main

    rc = main(["fit", "--quiet", "--verbose", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert rc == 2 and "--quiet and --verbose" in err


def _events():
    class C:  # nutpie.ChainProgress look-alike
        def __init__(self, done, total, div, tuning, started=True):
            self.finished_draws, self.total_draws, self.divergences = done, total, div
            self.tuning, self.started = tuning, started

    import time

    from nadfit.fitting.inference.fit import progress_snapshot
    t0 = time.time() - 10
    return [{"phase": "compile"},
            progress_snapshot([C(10, 100, 0, True), C(5, 100, 0, True)], t0),
            progress_snapshot([C(60, 100, 1, False), C(55, 100, 0, False)], t0),
            progress_snapshot([C(100, 100, 2, False), C(100, 100, 0, False)], t0),
            {"phase": "post"}, {"phase": "done"}]


def test_progress_snapshot_counts_draws_divergences_and_eta():
    ev = _events()
    assert ev[1]["phase"] == "tune" and ev[1]["done"] == 15 and ev[1]["total"] == 200
    assert ev[2]["phase"] == "draw" and ev[2]["divergences"] == 1 and ev[2]["eta_s"] > 0
    assert ev[3]["eta_s"] == 0


def test_progress_without_a_terminal_is_one_line_per_phase():
    from nadfit.fitting.cli.progress import FitProgress

    buf = io.StringIO()
    view = FitProgress(Console(file=buf, force_terminal=False, width=200))
    cb = view.callback("fit direct")
    for e in _events():
        cb(e)
    lines = buf.getvalue().splitlines()
    assert lines[0] == "  fit direct: compiling the model"
    assert any("sampling (tuning), 2 chains" in x for x in lines)
    assert any("200/200 iterations, 2 divergences" in x for x in lines)
    assert len(lines) <= 7


def _xla_events():
    """What sample_xla emits: in-loop counts (divergences unknown), then the totals."""
    ev = [{"phase": "compile"}, {"phase": "sample", "chains": 4, "chain_method": "parallel"}]
    for done in (40, 100, 160, 260, 330, 400):
        ev.append({"phase": "tune" if done < 160 else "draw", "chains": 4, "chains_started": 4, "done": done,
                   "total": 400, "divergences": None, "elapsed_s": done / 10, "eta_s": (400 - done) / 10})
    ev += [{"phase": "draw", "chains": 4, "chains_started": 4, "done": 400, "total": 400, "divergences": 0,
            "elapsed_s": 40.0, "eta_s": 0.0}, {"phase": "post"}, {"phase": "done"}]
    return ev


def test_progress_of_the_xla_sampler_counts_iterations_while_the_chains_run():
    """numpyro's in-loop counts give lines per quarter with an ETA; divergences come at the end."""
    from nadfit.fitting.cli.progress import FitProgress

    events = _xla_events()
    buf = io.StringIO()
    cb = FitProgress(Console(file=buf, force_terminal=False, width=200)).callback("fit mixed")
    for e in events:
        cb(e)
    lines = buf.getvalue().splitlines()
    assert any("compiling the sampler" in x and "4 chains" in x for x in lines)
    assert any("sampling (tuning)" in x for x in lines) and any("sampling (draws)" in x for x in lines)
    quarters = [x for x in lines if "ETA" in x]
    assert [q.split(": ")[1].split(",")[0] for q in quarters] == ["100/400 iterations", "260/400 iterations",
                                                                     "330/400 iterations"]
    assert not any("None" in x for x in lines)
    assert any("400/400 iterations, 0 divergences" in x for x in lines)
    buf = io.StringIO()
    view = FitProgress(Console(file=buf, force_terminal=True, width=160))
    cb = view.callback("fit mixed")
    for e in events:
        cb(e)
    view.close()
    assert "400/400" in buf.getvalue() and "ETA" in buf.getvalue() and "None" not in buf.getvalue()


def test_progress_on_a_terminal_draws_a_bar_and_quiet_prints_nothing():
    from nadfit.fitting.cli.progress import FitProgress

    buf = io.StringIO()
    view = FitProgress(Console(file=buf, force_terminal=True, width=160))
    cb = view.callback("fit direct")
    for e in _events():
        cb(e)
    view.close()
    out = buf.getvalue()
    assert "200/200" in out and "divergences" in out and "ETA" in out
    buf = io.StringIO()
    view = FitProgress(Console(file=buf, force_terminal=True), quiet=True)
    for e in _events():
        view.callback("x")(e)
    view.log("hello")
    assert buf.getvalue() == ""


@pytest.mark.parametrize("sampler", [
    "nutpie",  # compiles only the log density: fast enough for the default suite
    pytest.param("numpyro", marks=pytest.mark.slow),  # the default: XLA compiles the whole sampler (minutes cold)
])
def test_a_real_fit_prints_progress_and_no_warnings(tmp_path, sampler):
    """A small real fit through the CLI in a fresh process: stderr carries progress lines and
    no warning text (the user's view: default warning filters, stderr not a terminal)."""
    env = {**os.environ, "NADFIT_JAX_CACHE": "off"}
    cmd = [sys.executable, "-c", "import sys; from nadfit.fitting.cli import main; sys.exit(main(sys.argv[1:]))",
           "fit", "--hypothesis", "direct", "--draws", "30", "--tune", "30", "--chains", "1" if sampler == "nutpie" else "2", "--sampler", sampler,
           "--evidence", "airhart2017", "--accept-failed-gates", "--out", str(tmp_path / "run")]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "compiling the model" in res.stderr and "draws" in res.stderr
    for word in ("Warning", "warning:", "Sampling: ["):
        assert word not in res.stderr, res.stderr[-3000:]


def test_datasets_validate_json(capsys, tmp_path):
    import json

    from nadfit.fitting.cli import main

    rc = main(["datasets", "validate", "--json", str(REPO / "datasets" / "studies" / "airhart2017")])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out["valid"] is True and out["files"] >= 1 and out["problems"] == []
    bad = tmp_path / "evidence.csv"
    bad.write_text("study_id,value\nx,notanumber\n")
    rc = main(["datasets", "validate", "--json", str(bad)])
    out = json.loads(capsys.readouterr().out)
    assert rc == 2 and out["valid"] is False and out["problems"] and {"file", "row", "field", "message"} <= set(out["problems"][0])


def test_compare_and_run_all_share_the_smc_defaults():
    from nadfit.fitting.cli import compare
    from nadfit.fitting.comparison.pipeline import SMC_DRAWS, SMC_RUNS

    params = {}
    for name in ("compare", "run-all"):
        cmd = dict(_all_commands())[f"nadfit {name}"]
        params[name] = {p.name: p.default for p in cmd.params}
    assert params["compare"]["smc_draws"] == params["run-all"]["smc_draws"] == SMC_DRAWS
    assert params["compare"]["smc_runs"] == params["run-all"]["smc_runs"] == SMC_RUNS
    assert compare.SMC_DRAWS == SMC_DRAWS


def test_predict_and_report_on_a_folder_that_is_not_a_run(capsys, tmp_path):
    from nadfit.fitting.cli import main

    study = REPO / "datasets" / "studies" / "airhart2017"
    rc = main(["predict", str(study), "--compound", "NMN", "--dose", "300", "--days", "14"])
    err = capsys.readouterr().err
    assert rc == 2 and "not a nadfit run folder" in err, err
    rc = main(["report", str(study), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err
    assert rc == 2 and "not a nadfit run folder" in err, err


def test_dose_outside_the_studied_human_range_warns(capsys, tmp_path):
    from nadfit.fitting.cli import main
    from nadfit.fitting.inference.regimen import dose_plausibility, studied_dose_range

    lo, hi, n = studied_dose_range("NR")
    assert 0 < lo < hi and n >= 1
    assert dose_plausibility("NR", (lo + hi) / 2) is None
    assert "outside the studied human range" in dose_plausibility("NR", 60000)
    study = REPO / "datasets" / "studies" / "airhart2017"
    main(["predict", str(study), "--compound", "NR", "--dose", "60000", "--days", "14"])
    assert "outside the studied human range" in capsys.readouterr().err


def test_simulate_checks_arguments_before_importing_jax():
    code = ("import sys; from nadfit.fitting.cli import main; rc = main(['simulate', '--compound', 'XYZ', "
            "'--dose', '300', '--days', '10']); print('jax' in sys.modules); sys.exit(rc)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 2 and "--compound" in res.stderr
    assert res.stdout.strip() == "False"


@pytest.mark.parametrize("quiet", [False, True])
def test_report_prints_a_line_per_step(capsys, monkeypatch, tmp_path, quiet):
    """'nadfit report' was silent for ~25 s: each library step is now one line on stderr."""
    from nadfit.fitting.cli import main
    from nadfit.fitting.comparison import pipeline

    def fake(run_dir, out=None, psense=None, *, force=False, log=lambda *_: None):
        for step in ("loading the run", "power-scaling prior/likelihood sensitivity", "figures, tables and HTML"):
            log(step)
        path = tmp_path / "report.html"
        path.write_text("<html></html>")
        return path

    monkeypatch.setattr(pipeline, "render_run_report", fake)
    rc = main(["report", str(tmp_path), *(["--quiet"] if quiet else [])])
    out, err = capsys.readouterr()
    assert rc == 0 and "report written" in out
    steps = [line for line in err.splitlines() if line.startswith("  report: ")]
    if quiet:
        assert steps == []
    else:
        assert [s.split(" (")[0] for s in steps[:3]] == ["  report: loading the run",
                                                         "  report: power-scaling prior/likelihood sensitivity",
                                                         "  report: figures, tables and HTML"]
        assert "elapsed" in steps[0] and steps[-1].startswith("  report: written in ")


def test_render_run_report_calls_log_before_each_step(monkeypatch, tmp_path):
    """The library side: render_run_report announces loading, sensitivity and rendering."""
    from nadfit.fitting.comparison import pipeline, sensitivity
    from nadfit.fitting.inference import runs
    from nadfit.reports import render

    seen = []
    monkeypatch.setattr(runs, "load_summary", lambda d: seen.append("check") or {})
    monkeypatch.setattr(runs, "load_run", lambda d: seen.append("load") or "RUN")
    monkeypatch.setattr(sensitivity, "power_scaling", lambda r: seen.append("psense") or {})
    monkeypatch.setattr(render, "render_run", lambda r, out, psense: seen.append("render") or tmp_path)
    pipeline.render_run_report(tmp_path, log=lambda m: seen.append(m))
    assert seen == ["check", "loading the run", "load", "power-scaling prior/likelihood sensitivity", "psense",
                    "figures, tables and HTML", "render"]
    seen.clear()
    pipeline.render_run_report(tmp_path, psense={"reused": 1}, log=lambda m: seen.append(m))
    assert "psense" not in seen and "power-scaling prior/likelihood sensitivity" not in seen


def test_step_progress_on_a_terminal_shows_each_step_and_stops():
    from nadfit.fitting.cli.progress import StepProgress

    buf = io.StringIO()
    steps = StepProgress(Console(file=buf, force_terminal=True, width=120), "report")
    steps.log("loading the run")
    steps.log("figures, tables and HTML")
    steps.done("written")
    out = buf.getvalue()
    assert "report: loading the run" in out and "report: figures, tables and HTML" in out
    assert "report: written in " in out and steps._progress is None


def test_report_compare_prints_a_line_per_step(capsys, monkeypatch, tmp_path):
    from nadfit.fitting.cli import main
    from nadfit.fitting.comparison import pipeline

    def fake(folder, out=None, *, force=False, log=lambda *_: None):
        log("figures, tables and HTML")
        path = tmp_path / "comparison.html"
        path.write_text("<html></html>")
        return path

    monkeypatch.setattr(pipeline, "render_comparison_folder", fake)
    rc = main(["report-compare", str(tmp_path)])
    out, err = capsys.readouterr()
    assert rc == 0 and "comparison report written" in out
    assert "  report-compare: figures, tables and HTML (" in err and "report-compare: written in " in err


def test_another_kind_of_nadfit_folder_is_named_with_what_to_give_instead(capsys, tmp_path):
    """A run-all folder given to predict, a comparison folder given to report, a run folder given
    to report-compare: one line naming the folder's kind and what to give instead."""
    from nadfit.fitting.cli import main

    run_all = tmp_path / "main"
    run_all.mkdir()
    (run_all / ".nadfit-output").write_text('{"kind": "run-all"}')
    comparison = tmp_path / "cmp"
    comparison.mkdir()
    (comparison / "COMPLETE").write_text("nadfit:comparison\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "COMPLETE").write_text("nadfit:run\n")
    cases = [(["predict", str(run_all), "--compound", "NMN", "--dose", "300", "--days", "7"],
              "this is a nadfit run-all folder, not a run folder; give one of its fits/<hypothesis> folders"),
             (["report", str(comparison), "--out", str(tmp_path / "r.html")],
              "this is a nadfit comparison folder, not a run folder"),
             (["report-compare", str(run), "--out", str(tmp_path / "c.html")],
              "this is a nadfit run folder, not a comparison folder")]
    for argv, message in cases:
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "r.html").exists() and not (tmp_path / "c.html").exists()


def test_native_xla_log_is_quiet_unless_verbose_or_set_by_the_user():
    """XLA's C++ "Very slow compile?" alarm (logged at ERROR) is hidden by TF_CPP_MIN_LOG_LEVEL=3
    before JAX loads; --verbose/-v and a level the user set keep the native log as it is."""
    from nadfit.fitting.cli import NATIVE_LOG_LEVEL, native_log_level

    assert NATIVE_LOG_LEVEL == "3"
    assert native_log_level(["run-all", "--out", "x"], {}) == "3"
    assert native_log_level(["run-all", "--verbose"], {}) is None
    assert native_log_level(["fit", "-v"], {}) is None
    assert native_log_level(["fit"], {"TF_CPP_MIN_LOG_LEVEL": "0"}) is None
    assert native_log_level(["fit", "-qv"], {}) is None  # short switches together (click accepts them)
    assert native_log_level(["fit", "-vq"], {}) is None
    assert native_log_level(["fit", "-q"], {}) == "3"
    assert native_log_level(["fit", "--seed", "-5"], {}) == "3"


def test_native_log_level_reaches_a_fresh_process(tmp_path):
    """In a fresh process the level is set before the command runs (so before JAX loads: jaxlib
    reads it when it loads) and removed again when the command returns (in-process callers and
    later subprocesses see their own environment)."""
    import subprocess
    import sys

    code = ("import os, sys; import nadfit.fitting.cli as c; seen = []; run = c._main\n"
            "def spy(argv):\n"
            "    seen.append(os.environ.get('TF_CPP_MIN_LOG_LEVEL', 'unset'))\n"
            "    return run(argv)\n"
            "c._main = spy; c.main(['datasets', 'list', '--json'])\n"
            "sys.stderr.write('DURING=' + seen[0] + ' AFTER=' + os.environ.get('TF_CPP_MIN_LOG_LEVEL', 'unset'))")
    env = {k: v for k, v in __import__("os").environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert "DURING=3 AFTER=unset" in out.stderr, out.stderr[-500:]
