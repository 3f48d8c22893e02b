"""Bad-input corpus across commands (fit, compare, run-all, bench, report, predict).

Every case is one row of ``CASES``: a builder that prepares files under ``tmp_path`` and returns
the command line, the expected exit status, the expected start of the one stderr line and a
fragment it must contain. For every case: the exact exit status, exactly one non-empty line on
stderr, no "Traceback" anywhere, and nothing written to the output folder (it does not exist
afterwards, or an existing file/folder is byte-for-byte unchanged, and no temporary siblings).

No case may start sampling: ``sample_posterior`` is replaced by a function that fails the test.
The evidence-file corpus lives in ``tests/datasets`` (``nadfit datasets validate``) and is not
repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
from reliability_helpers import make_run, run_cli, snapshot, tmp_leftovers, write_posterior

ERR = "nadfit: error: "


@dataclass
class Case:
    build: Callable[[Path], list]  # tmp_path -> argv (may use "{out}" placeholder paths)
    rc: int
    prefix: str  # expected start of the stderr line after "nadfit: error: "; "{tmp}" = tmp_path
    fragment: str  # must occur in the line
    out: str = "out"  # output path relative to tmp_path that must stay untouched
    needs: str | None = None  # command that must exist (colleagues' commands may be absent)


def _cfg(name: str, text: str | bytes, command: str = "fit"):
    def build(tmp: Path):
        p = tmp / name
        p.write_bytes(text) if isinstance(text, bytes) else p.write_text(text)
        return [command, "--out", tmp / "out", "--config", p]
    return build


def _run_all_cfg(name: str, text: str):
    return _cfg(name, text, command="run-all")


def _fit(*opts):
    def build(tmp: Path):
        return ["fit", "--out", tmp / "out", *opts]
    return build


def _fit_out_file(tmp: Path):
    (tmp / "out").write_text("precious\n")
    return ["fit", "--out", tmp / "out", "--quick"]


def _bench_out_folder(tmp: Path):
    (tmp / "out").mkdir()
    (tmp / "out" / "keep.txt").write_text("precious\n")
    return ["bench", "--quick", "--out", tmp / "out"]


def _bench_out_under_file(tmp: Path):
    (tmp / "afile").write_text("precious\n")
    return ["bench", "--quick", "--out", tmp / "afile" / "bench.json"]


def _fit_out_under_file(tmp: Path):
    (tmp / "afile").write_text("precious\n")
    return ["fit", "--out", tmp / "afile" / "deeper" / "run", "--quick"]


def _run_all_out_file(tmp: Path):
    (tmp / "out").write_text("precious\n")
    return ["run-all", "--out", tmp / "out", "--quick"]


def _two(a_kw=None, b_kw=None, extra=()):
    """compare two synthetic runs built with make_run keyword overrides."""
    def build(tmp: Path):
        a = make_run(tmp / "a", **({"hypothesis": "direct"} | (a_kw or {})))
        b = make_run(tmp / "b", **({"hypothesis": "via-nr"} | (b_kw or {})))
        return ["compare", a, b, "--out", tmp / "out", *extra]
    return build


def _compare_with(setup: Callable[[Path], Path], *, first: bool = True):
    """compare a damaged run (made by ``setup(tmp)``) with a good one."""
    def build(tmp: Path):
        bad = setup(tmp)
        good = make_run(tmp / "good", hypothesis="mixed")
        runs = [bad, good] if first else [good, bad]
        return ["compare", *runs, "--out", tmp / "out"]
    return build


def _missing(tmp):
    return tmp / "a"


def _empty(tmp):
    (tmp / "a").mkdir()
    return tmp / "a"


def _a_file(tmp):
    (tmp / "a").write_text("not a folder\n")
    return tmp / "a"


def _incomplete(tmp):
    return make_run(tmp / "a", complete=False)


def _schema(tmp):
    return make_run(tmp / "a", schema="nadfit.run/0")


def _summary_garbage(tmp):
    a = make_run(tmp / "a")
    (a / "summary.json").write_bytes(b"\x89PNG\r\n\x1a\n\x00garbage")
    return a


def _summary_not_object(tmp):
    a = make_run(tmp / "a")
    (a / "summary.json").write_text("[1, 2, 3]\n")
    return a


def _summary_no_ids(tmp):
    import json

    a = make_run(tmp / "a")
    s = json.loads((a / "summary.json").read_text())
    del s["evidence_ids"]
    (a / "summary.json").write_text(json.dumps(s))
    return a


def _summary_missing(tmp):
    a = make_run(tmp / "a")
    (a / "summary.json").unlink()
    return a


def _posterior_garbage(tmp):
    a = make_run(tmp / "a")
    (a / "posterior.nc").write_bytes(b"\x00\xffnot netCDF at all" * 50)
    return a


def _posterior_truncated(tmp):
    a = make_run(tmp / "a")
    data = (a / "posterior.nc").read_bytes()
    (a / "posterior.nc").write_bytes(data[: len(data) // 2])
    return a


def _posterior_missing(tmp):
    a = make_run(tmp / "a")
    (a / "posterior.nc").unlink()
    return a


def _posterior_no_posterior_group(tmp):
    a = make_run(tmp / "a")
    write_posterior(a / "posterior.nc", "direct", groups=["log_likelihood", "observed_data"])
    return a


def _posterior_no_loglik(tmp):
    a = make_run(tmp / "a")
    write_posterior(a / "posterior.nc", "direct", groups=["posterior", "observed_data"])
    return a


def _compare_out_file(tmp):
    a = make_run(tmp / "a", hypothesis="direct")
    b = make_run(tmp / "b", hypothesis="via-nr")
    (tmp / "out").write_text("precious\n")
    return ["compare", a, b, "--out", tmp / "out", "--smc-runs", "0", "--no-bridge", "--no-psense"]


def _predict(*opts, run="run"):
    def build(tmp: Path):
        return ["predict", tmp / run, *opts]
    return build


def _report(setup):
    def build(tmp: Path):
        return ["report", setup(tmp), "--out", tmp / "out" / "report.html"]
    return build


P = "{tmp}/"
CASES: dict[str, Case] = {
    # --- fit: configuration files ------------------------------------------------------------
    "cfg_unknown_hypothesis": Case(_cfg("c.toml", 'hypothesis = "bogus"\n'), 2,
                                   P + "c.toml:hypothesis: unknown hypothesis 'bogus'", "choose one of direct"),
    "cfg_hypothesis_list": Case(_cfg("c.yaml", "hypothesis: [direct]\n"), 2,
                                P + "c.yaml:hypothesis: unknown hypothesis ['direct']", "choose one of"),
    "cfg_unknown_setting": Case(_cfg("c.toml", "drawz = 10\n"), 2, P + "c.toml:drawz: unknown setting 'drawz'", ""),
    "cfg_unknown_observation": Case(_cfg("c.yaml", "observation: {nope: 1}\n"), 2,
                                    P + "c.yaml:observation: unknown observation setting 'nope'", "known: "),
    "cfg_observation_not_mapping": Case(_cfg("c.yaml", "observation: [1, 2]\n"), 2,
                                        P + "c.yaml:observation: observation must be a mapping", "[1, 2]"),
    "cfg_observation_negative": Case(_cfg("c.toml", "observation = { tau = -1.0 }\n"), 2,
                                     P + "c.toml:observation: observation setting tau must be a positive number",
                                     "-1.0"),
    "cfg_observation_bool": Case(_cfg("c.yaml", "observation: {tau: true}\n"), 2,
                                 P + "c.yaml:observation: observation setting tau must be a positive number", "True"),
    "cfg_draws_string": Case(_cfg("c.toml", 'draws = "ten"\n'), 2,
                             P + "c.toml:draws: draws must be a positive whole number", "'ten'"),
    "cfg_draws_float": Case(_cfg("c.yaml", "draws: 10.5\n"), 2,
                            P + "c.yaml:draws: draws must be a positive whole number", "10.5"),
    "cfg_draws_bool": Case(_cfg("c.toml", "draws = true\n"), 2,
                           P + "c.toml:draws: draws must be a positive whole number", "True"),
    "cfg_chains_zero": Case(_cfg("c.toml", "chains = 0\n"), 2,
                            P + "c.toml:chains: chains must be a positive whole number", "got 0"),
    "cfg_seed_bool": Case(_cfg("c.yaml", "seed: true\n"), 2, P + "c.yaml:seed: seed must be a non-negative", "True"),
    "cfg_seed_huge": Case(_cfg("c.toml", "seed = 9223372036854775808\n"), 2,  # 2**63
                          P + "c.toml:seed: seed must be a non-negative whole number below 2**63", ""),
    "cfg_evidence_not_list": Case(_cfg("c.yaml", "evidence: 5\n"), 2,
                                  P + "c.yaml:evidence: evidence must be a list of study or evidence ids", "got 5"),
    "cfg_exclude_list_of_ints": Case(_cfg("c.yaml", "exclude: [1, 2]\n"), 2,
                                     P + "c.yaml:exclude: exclude must be a list", "[1, 2]"),
    "cfg_target_accept_string": Case(_cfg("c.yaml", "target_accept: high\n"), 2,
                                     P + "c.yaml:target_accept: target_accept must be in [0.5, 1)", "'high'"),
    "cfg_target_accept_one": Case(_cfg("c.toml", "target_accept = 1.0\n"), 2,
                                  P + "c.toml:target_accept: target_accept must be in [0.5, 1)", "1.0"),
    "cfg_widen_string": Case(_cfg("c.yaml", "widen_priors: wide\n"), 2,
                             P + "c.yaml:widen_priors: widen_priors must be a positive number", "'wide'"),
    "cfg_widen_inf": Case(_cfg("c.toml", "widen_priors = inf\n"), 2,
                          P + "c.toml:widen_priors: widen_priors must be a positive number", "inf"),
    "cfg_accept_failed_gates_string": Case(_cfg("c.toml", 'accept_failed_gates = "yes"\n'), 2,
                                           P + "c.toml:accept_failed_gates: accept_failed_gates must be true or false",
                                           "'yes'"),
    "cfg_not_mapping": Case(_cfg("c.yaml", "- draws\n- 10\n"), 2, P + "c.yaml: config must be a mapping of settings", ""),
    "cfg_empty_yaml": Case(_cfg("c.yaml", ""), 2, P + "c.yaml: config must be a mapping of settings", ""),
    "cfg_bad_toml": Case(_cfg("c.toml", "draws = \n"), 2, P + "c.toml: config is not valid TOML", "TOMLDecodeError"),
    "cfg_bad_yaml": Case(_cfg("c.yaml", "draws: [1,\n"), 2, P + "c.yaml: config is not valid YAML", "Error"),
    "cfg_not_utf8": Case(_cfg("c.toml", b"\xff\xfe\x00d\x00r"), 2, P + "c.toml: config is not UTF-8 text", ""),
    "cfg_missing": Case(lambda tmp: ["fit", "--out", tmp / "out", "--config", tmp / "nope.toml"], 2,
                        P + "nope.toml: cannot read config", "No such file"),
    "cfg_is_folder": Case(lambda tmp: ["fit", "--out", tmp / "out", "--config", tmp], 2,
                          "{tmp}: cannot read config", ""),
    # --- fit: options ---------------------------------------------------------------------
    "fit_draws_zero": Case(_fit("--draws", "0"), 2, "draws: draws must be a positive whole number", "got 0"),
    "fit_draws_negative": Case(_fit("--draws", "-3"), 2, "draws: draws must be a positive whole number", "got -3"),
    "fit_draws_not_integer": Case(_fit("--draws", "1.5"), 2, "Invalid value for '--draws'", "nadfit fit --help"),
    "fit_chains_zero": Case(_fit("--chains", "0"), 2, "chains: chains must be a positive whole number", "got 0"),
    "fit_tune_negative": Case(_fit("--tune", "-1"), 2, "tune: tune must be a positive whole number or 0", "got -1"),
    "fit_seed_negative": Case(_fit("--seed", "-1"), 2, "seed: seed must be a non-negative whole number", "got -1"),
    "fit_unknown_hypothesis": Case(_fit("--hypothesis", "nope"), 2, "hypothesis: unknown hypothesis 'nope'", ""),
    "fit_unknown_evidence": Case(_fit("--quick", "--evidence", "nosuchstudy"), 2,
                                 "evidence: evidence selector 'nosuchstudy' matches no study or evidence id", ""),
    "fit_unknown_exclude": Case(_fit("--quick", "--exclude", "yi2022,EV99999"), 2,
                                "evidence: evidence selector 'EV99999' matches no study or evidence id", ""),
    "fit_out_is_file": Case(_fit_out_file, 2, "{tmp}/out: output path exists and is not a directory", ""),
    "fit_out_under_file": Case(_fit_out_under_file, 2, "{tmp}/afile: output path lies inside a file", "",
                               out="afile"),
    "fit_missing_out": Case(lambda tmp: ["fit", "--quick"], 2, "Missing option '--out'", "nadfit fit --help"),
    "fit_unknown_option": Case(_fit("--drawz", "3"), 2, "No such option: --drawz", ""),
    # --- compare ----------------------------------------------------------------------------
    "compare_missing_run": Case(_compare_with(_missing), 2, "{tmp}/a: run folder does not exist", ""),
    "compare_empty_run": Case(_compare_with(_empty), 2, "{tmp}/a: run folder is empty", ""),
    "compare_run_is_file": Case(_compare_with(_a_file), 2, "{tmp}/a: run path is not a folder", ""),
    "compare_incomplete_run": Case(_compare_with(_incomplete), 2, "{tmp}/a: run folder is incomplete", "refit"),
    "compare_incompatible_schema": Case(_compare_with(_schema), 2,
                                        "{tmp}/a/summary.json: run was written by an incompatible nadfit version",
                                        "'nadfit.run/0'"),
    "compare_summary_garbage": Case(_compare_with(_summary_garbage), 2,
                                    "{tmp}/a/summary.json: summary.json is not valid JSON", ""),
    "compare_summary_not_object": Case(_compare_with(_summary_not_object), 2,
                                       "{tmp}/a/summary.json: summary.json is not a JSON object", ""),
    "compare_summary_missing_field": Case(_compare_with(_summary_no_ids), 2,
                                          "{tmp}/a/summary.json:evidence_ids: summary.json lacks a valid "
                                          "'evidence_ids' entry", "refit"),
    "compare_summary_missing": Case(_compare_with(_summary_missing), 2, "{tmp}/a/summary.json: summary.json is missing",
                                    ""),
    "compare_posterior_garbage": Case(_compare_with(_posterior_garbage), 2,
                                      "{tmp}/a/posterior.nc: posterior.nc cannot be read", "truncated or corrupted"),
    "compare_posterior_truncated": Case(_compare_with(_posterior_truncated), 2,
                                        "{tmp}/a/posterior.nc: posterior.nc cannot be read", "truncated or corrupted"),
    "compare_posterior_missing": Case(_compare_with(_posterior_missing), 2,
                                      "{tmp}/a/posterior.nc: posterior.nc is missing", ""),
    "compare_posterior_no_posterior_group": Case(_compare_with(_posterior_no_posterior_group), 2,
                                                 "{tmp}/a/posterior.nc: posterior.nc has no posterior group", ""),
    "compare_posterior_no_loglik": Case(_compare_with(_posterior_no_loglik), 2,
                                        "{tmp}/a/posterior.nc: posterior.nc lacks the group(s) log_likelihood", ""),
    "compare_same_hypothesis": Case(_two(b_kw={"hypothesis": "direct"}), 2, "{tmp}/b: two runs for hypothesis 'direct'",
                                    ""),
    "compare_different_evidence_values": Case(_two(b_kw={"fingerprint": "b" * 64}), 2,
                                              "{tmp}/b: run was fitted to different evidence than {tmp}/a",
                                              "refit both on the same evidence"),
    "compare_different_evidence_rows": Case(_two(b_kw={"evidence_ids": ("EV001", "EV002"), "study_ids": ("s1", "s1")}),
                                            2, "{tmp}/b: run was fitted to different evidence than {tmp}/a", ""),
    "compare_failed_gates": Case(_two(a_kw={"status": "failed_gates"}), 2,
                                 "{tmp}/a: run failed its diagnostics gates; refit it or pass --accept-failed-gates", ""),
    "compare_single_run": Case(lambda tmp: ["compare", make_run(tmp / "a"), "--out", tmp / "out"], 2,
                               "RUN_DIR: compare needs at least two run folders", ""),
    "compare_negative_smc_runs": Case(_two(extra=("--smc-runs", "-1")), 2,
                                      "smc: --smc-runs must be >= 0 and --smc-draws >= 10", ""),
    "compare_out_is_file": Case(_compare_out_file, 2, "{tmp}/out: output path exists and is not a directory", ""),
    "compare_missing_out": Case(lambda tmp: ["compare", tmp / "a", tmp / "b"], 2, "Missing option '--out'", ""),
    # --- run-all ----------------------------------------------------------------------------
    "run_all_out_is_file": Case(_run_all_out_file, 2, "{tmp}/out: output path exists and is not a directory", ""),
    "run_all_zero_chains": Case(lambda tmp: ["run-all", "--out", tmp / "out", "--chains", "0"], 2,
                                "chains: chains must be a positive whole number", ""),
    "run_all_cfg_hypothesis": Case(_run_all_cfg("c.toml", 'hypothesis = "direct"\n'), 2,
                                   P + "c.toml:hypothesis: run-all fits every hypothesis", ""),
    "run_all_cfg_bad_sampler": Case(_run_all_cfg("c.toml", 'sampler = "stan"\n'), 2,
                                    P + "c.toml:sampler: unknown sampler 'stan'", ""),
    "run_all_cfg_unknown_setting": Case(_run_all_cfg("c.yaml", "drawz: 10\n"), 2,
                                        P + "c.yaml:drawz: unknown setting 'drawz'", ""),
    # --- bench (the output file is checked before the benchmark runs) -------------------------
    "bench_out_is_folder": Case(_bench_out_folder, 2, "{tmp}/out: output path is a folder; give a file name", ""),
    "bench_out_under_file": Case(_bench_out_under_file, 2, "{tmp}/afile: output path lies inside a file", "",
                                 out="afile"),
    "bench_negative_cap": Case(lambda tmp: ["bench", "--quick", "--numpyro-cap", "-1", "--out", tmp / "out"], 2,
                               "Invalid value for '--numpyro-cap'", "greater than or equal to 0"),
    # --- predict (fitting/cli/report.py) --------
    "predict_unknown_compound": Case(_predict("--compound", "NAD", "--dose", "300", "--days", "30"), 2,
                                     "--compound must be NMN or NR", "'NAD'", needs="predict"),
    "predict_zero_dose": Case(_predict("--compound", "NMN", "--dose", "0", "--days", "30"), 2,
                              "--dose must be a positive finite number", "", needs="predict"),
    "predict_negative_dose": Case(_predict("--compound", "NR", "--dose", "-5", "--days", "30"), 2,
                                  "--dose must be a positive finite number", "", needs="predict"),
    "predict_nan_dose": Case(_predict("--compound", "NMN", "--dose", "nan", "--days", "30"), 2,
                             "--dose must be a positive finite number", "nan", needs="predict"),
    "predict_inf_dose": Case(_predict("--compound", "NMN", "--dose", "inf", "--days", "30"), 2,
                             "--dose must be a positive finite number", "inf", needs="predict"),
    "predict_zero_day": Case(_predict("--compound", "NMN", "--dose", "300", "--days", "0"), 2,
                             "--days must be in (0,", "", needs="predict"),
    "predict_negative_day": Case(_predict("--compound", "NMN", "--dose", "300", "--days", "-2"), 2,
                                 "--days must be in (0,", "", needs="predict"),
    "predict_nan_day": Case(_predict("--compound", "NMN", "--dose", "300", "--days", "nan"), 2,
                            "--days must be in (0,", "", needs="predict"),
    "predict_unknown_matrix": Case(_predict("--compound", "NMN", "--dose", "300", "--days", "30", "--matrix",
                                            "urine"), 2, "--matrix must be one of", "'urine'", needs="predict"),
    "predict_zero_doses_per_day": Case(_predict("--compound", "NMN", "--dose", "300", "--days", "30",
                                                "--doses-per-day", "0"), 2, "--doses-per-day must be", "",
                                       needs="predict"),
    "predict_missing_run": Case(_predict("--compound", "NMN", "--dose", "300", "--days", "30"), 2,
                                "{tmp}/run: run folder does not exist", "", needs="predict"),
    "predict_incomplete_run": Case(lambda tmp: ["predict", make_run(tmp / "run", complete=False), "--compound", "NMN",
                                                "--dose", "300", "--days", "30"], 2,
                                   "{tmp}/run: run folder is incomplete", "", needs="predict"),
    "predict_too_many_doses_per_day": Case(_predict("--compound", "NMN", "--dose", "300", "--days", "30",
                                                    "--doses-per-day", "99999999999999999999999"), 2,
                                           "--doses-per-day must be a whole number in [1, 24]", "", needs="predict"),
    "predict_huge_dose": Case(_predict("--compound", "NMN", "--dose", "1e308", "--days", "30"), 2,
                              "--dose must be at most 100000 mg/day", "", needs="predict"),
    # --- plan-trial (fitting/cli/report.py; options before any run folder is read) -------------
    "plan_trial_bad_arm": Case(lambda tmp: ["plan-trial", tmp / "a", tmp / "b", "--arm", "NMN"], 2,
                               "arm: --arm must be COMPOUND:MG_PER_DAY[:DOSES_PER_DAY]", "'NMN'", needs="plan-trial"),
    "plan_trial_huge_doses_per_day": Case(lambda tmp: ["plan-trial", tmp / "a", tmp / "b", "--arm",
                                                       "NMN:300:99999999999999999999999"], 2,
                                          "arm: --arm 'NMN:300:99999999999999999999999': doses per day must be", "",
                                          needs="plan-trial"),
    "plan_trial_one_run": Case(lambda tmp: ["plan-trial", make_run(tmp / "a", hypothesis="direct"), "--arm",
                                            "NMN:300"], 2, "runs: give the run folders of at least two hypotheses",
                               "", needs="plan-trial"),
    "plan_trial_missing_run": Case(lambda tmp: ["plan-trial", tmp / "a", tmp / "b", "--arm", "NMN:300"], 2,
                                   "{tmp}/a: run folder does not exist", "", needs="plan-trial"),
    # --- report (colleague's command: folder checks only) --------------------------------------
    "report_missing_run": Case(_report(_missing), 2, "{tmp}/a: run folder does not exist", "", needs="report"),
    "report_incomplete_run": Case(_report(_incomplete), 2, "{tmp}/a: run folder is incomplete", "", needs="report"),
    "report_incompatible_schema": Case(_report(_schema), 2,
                                       "{tmp}/a/summary.json: run was written by an incompatible nadfit version", "",
                                       needs="report"),
}


def _commands() -> set[str]:
    from nadfit.fitting.cli import _register, app

    if not app.registered_commands and not app.registered_groups:
        _register()
    return {c.name for c in app.registered_commands}


@pytest.fixture(autouse=True)
def _no_sampling(monkeypatch):
    """A bad input must be refused before sampling; reaching the sampler fails the test."""
    import nadfit.fitting.inference.fit as fit

    def boom(*a, **k):
        raise AssertionError("sampling started for a bad input")

    monkeypatch.setattr(fit, "sample_posterior", boom)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name, tmp_path, capsys):
    case = CASES[name]
    if case.needs and case.needs not in _commands():
        pytest.skip(f"'nadfit {case.needs}' does not exist yet")
    argv = case.build(tmp_path)
    out = tmp_path / case.out
    before = snapshot(out) if out.is_dir() else (out.read_bytes() if out.exists() else None)
    rc, stdout, stderr = run_cli(capsys, argv)
    text = stdout + stderr
    assert "Traceback" not in text, text
    assert rc == case.rc, text
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one stderr line, got:\n{stderr}"
    expected = ERR + case.prefix.replace("{tmp}", str(tmp_path))
    assert lines[0].startswith(expected), f"\n{lines[0]}\nshould start with\n{expected}"
    assert case.fragment in lines[0], lines[0]
    # nothing written: output absent, or an existing output unchanged; no temporary siblings
    after = snapshot(out) if out.is_dir() else (out.read_bytes() if out.exists() else None)
    assert after == before
    assert tmp_leftovers(tmp_path) == [] and tmp_leftovers(out.parent) == []


def test_corpus_covers_every_command():
    assert len(CASES) >= 60
    prefixes = {name.split("_")[0] for name in CASES}
    assert {"cfg", "fit", "compare", "run", "predict", "report"} <= prefixes


def test_root_cannot_bypass_the_writability_check(tmp_path):
    """A folder whose parent is a file can never be created, even by root (permissions aside)."""
    from nadfit.datasets.errors import UserError
    from nadfit.fitting.storage.outputs import atomic_dir, check_output_dir

    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="lies inside a file"):
        check_output_dir(tmp_path / "f" / "run")
    with pytest.raises(UserError, match="lies inside a file"):
        with atomic_dir(tmp_path / "f" / "a" / "run"):
            pass


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root ignores folder permissions")
def test_non_writable_parent(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc, _, err = run_cli(capsys, ["fit", "--out", locked / "run", "--quick"])
        assert rc == 2 and err.startswith(ERR + f"{locked}: output directory is not writable"), err
        assert not (locked / "run").exists()
    finally:
        locked.chmod(0o700)


def test_nan_is_never_a_valid_setting(tmp_path):
    from nadfit.datasets.errors import UserError
    from nadfit.fitting.inference.config import config_from_file

    for key in ("target_accept", "widen_priors"):
        p = tmp_path / f"{key}.toml"
        p.write_text(f"{key} = nan\n")
        with pytest.raises(UserError, match=key):
            config_from_file(p)
