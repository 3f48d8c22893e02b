"""The output contract, what is allowed: replacing an earlier output of the same kind (atomic and
reported), resuming multi-step outputs, the check just before the final rename, symlinks, and
single-file outputs (never overwritten without ``--force``). No sampling anywhere."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from nadfit.datasets.errors import UserError
from nadfit.fitting.storage import outputs
from nadfit.fitting.storage.outputs import atomic_dir, check_output_dir, claim_output_dir, output_kind
from tests.fitting.storage.contract_helpers import guard_long_work, thesis, tree_digest
from tests.reliability.reliability_helpers import make_run, run_cli, tmp_leftovers

ATOMIC = ("run", "comparison", "calibration", "recovery", "task")
DOCUMENT = {"run": "summary.json", "comparison": "comparison.json", "calibration": "calibration.json",
            "recovery": "recovery.json", "task": "result.json"}
SCHEMA = {"run": "nadfit.run/1", "comparison": "nadfit.comparison/1", "calibration": "nadfit.calibration/1",
          "recovery": "nadfit.recovery/1", "task": None}


@pytest.fixture(autouse=True)
def _no_long_work(monkeypatch):
    guard_long_work(monkeypatch)
    monkeypatch.setenv("NADFIT_JAX_CACHE", "off")


def earlier(folder: Path, kind: str, legacy: bool = False) -> Path:
    """An earlier complete atomic output of ``kind`` (legacy: ``COMPLETE`` holds "ok")."""
    folder.mkdir(parents=True)
    doc = {"schema": SCHEMA[kind]} if SCHEMA[kind] else {"value": 1}
    (folder / DOCUMENT[kind]).write_text(json.dumps(doc))
    (folder / "COMPLETE").write_text("ok\n" if legacy else f"nadfit:{kind}\n")
    return folder


# --- (d) replacing an earlier output of the same kind -------------------------------------------
@pytest.mark.parametrize("legacy", [False, True], ids=["marked", "legacy"])
@pytest.mark.parametrize("kind", ATOMIC)
def test_replacing_an_earlier_output_of_the_same_kind(tmp_path, kind, legacy):
    out = earlier(tmp_path / "out", kind, legacy)
    (tmp_path / "sibling.txt").write_text("mine\n")
    notes = []
    with atomic_dir(out, kind, notify=notes.append) as tmp:
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["COMPLETE", "new.txt"]  # replaced, not merged
    assert (out / "COMPLETE").read_text() == f"nadfit:{kind}\n"
    assert output_kind(out) == kind
    assert notes == [f"nadfit: replaced earlier {outputs.KINDS[kind]} {out}"]
    assert (tmp_path / "sibling.txt").read_text() == "mine\n" and tmp_leftovers(tmp_path) == []


@pytest.mark.parametrize("state", ["absent", "empty"])
def test_new_and_empty_folders_are_written_silently(tmp_path, state):
    out = tmp_path / "deeper" / "out"
    if state == "empty":
        out.mkdir(parents=True)
    notes = []
    with atomic_dir(out, "run", notify=notes.append) as tmp:
        (tmp / "x").write_text("1")
    assert (out / "x").read_text() == "1" and notes == [] and tmp_leftovers(out.parent) == []


def test_cli_replacement_is_reported_on_stderr(tmp_path, capsys, monkeypatch):
    import nadfit.fitting.calibration.confusion as confusion

    monkeypatch.setattr(confusion, "confusion_matrix", lambda **k: {"confusion": {}, "recovery_rate": 0.5})
    out = tmp_path / "cal"
    rc, _, err = run_cli(capsys, ["compare-calibration", "--out", out])
    assert rc == 0 and "replaced" not in err, err
    assert output_kind(out) == "calibration"
    rc, _, err = run_cli(capsys, ["compare-calibration", "--out", out])
    assert rc == 0, err
    assert f"nadfit: replaced earlier calibration {out}" in err.splitlines()
    assert json.loads((out / "calibration.json").read_text())["schema"] == "nadfit.calibration/1"
    # and the calibration folder is not a run folder
    rc, _, err = run_cli(capsys, ["fit", "--quick", "--out", out])
    assert rc == 2 and "is a nadfit calibration folder, not a nadfit run folder" in err


def test_replacement_through_a_symlink_keeps_the_link(tmp_path):
    target = make_run(tmp_path / "store" / "run")
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    with atomic_dir(link, "run", notify=lambda m: None) as tmp:
        (tmp / "new.txt").write_text("new")
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert (target / "new.txt").read_text() == "new" and not (target / "summary.json").exists()
    assert tmp_leftovers(tmp_path / "store") == [] and tmp_leftovers(tmp_path) == []


def test_dangling_symlink_is_refused(tmp_path):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match="symbolic link to nothing"):
        check_output_dir(link, "run")
    assert not (tmp_path / "nowhere").exists()


# --- the check just before the final rename -------------------------------------------------------
def test_folder_filled_meanwhile_is_not_replaced(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(UserError, match="exists and is not a nadfit run folder.*the new result was kept in"):
        with atomic_dir(out, "run") as tmp:
            (tmp / "summary.json").write_text("{}")
            thesis(tmp_path, "out")  # the user creates the folder while nadfit samples
    assert (out / "chapter1.tex").exists() and sorted(p.name for p in out.iterdir()) == [
        "chapter1.tex", "figures"]
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("out.nadfit-new-")]
    assert len(kept) == 1 and (kept[0] / "COMPLETE").read_text() == "nadfit:run\n"
    assert tmp_leftovers(tmp_path) == []


def test_earlier_run_swapped_for_a_users_folder_meanwhile(tmp_path):
    out = make_run(tmp_path / "out")
    with pytest.raises(UserError, match="the new result was kept in"):
        with atomic_dir(out, "run") as tmp:
            (tmp / "x").write_text("1")
            shutil.rmtree(out)
            thesis(tmp_path, "out")
    assert (out / "chapter1.tex").exists() and not (out / "x").exists()
    assert tmp_leftovers(tmp_path) == []


def test_folder_changed_between_the_check_and_the_move_is_put_back(tmp_path, monkeypatch):
    """The last race: the earlier run turns foreign after the re-check; it is moved back untouched."""
    out = make_run(tmp_path / "out")
    real_plan = outputs._plan
    calls = []

    def plan_then_tamper(o, kind, inputs):
        res = real_plan(o, kind, inputs)
        calls.append(o)
        if len(calls) == 2:  # the re-check passed; now the folder stops being a run
            (Path(o) / "COMPLETE").write_text("my notes\n")
        return res

    monkeypatch.setattr(outputs, "_plan", plan_then_tamper)
    with pytest.raises(UserError, match="changed meanwhile"):
        with atomic_dir(out, "run") as tmp:
            (tmp / "x").write_text("1")
    assert (out / "COMPLETE").read_text() == "my notes\n" and (out / "summary.json").exists()
    assert tmp_leftovers(tmp_path) == []
    assert [p.name for p in tmp_path.iterdir() if ".nadfit-new-" in p.name]  # the new result is kept


# --- multi-step outputs: marked at the start, resumed ---------------------------------------------
@pytest.mark.parametrize("kind", sorted(outputs.RESUMABLE))
def test_claim_marks_new_folders_and_reuses_same_kind(tmp_path, kind):
    out = tmp_path / "out"
    notes = []
    claim_output_dir(out, kind, notify=notes.append)
    assert json.loads((out / ".nadfit-output").read_text()) == {"kind": kind} and notes == []
    (out / "partial-task").mkdir()  # an interrupted run left some work
    claim_output_dir(out, kind, notify=notes.append)
    assert (out / "partial-task").is_dir() and notes == [f"nadfit: reusing earlier {outputs.KINDS[kind]} {out}"]
    other = next(k for k in sorted(outputs.RESUMABLE) if k != kind)
    with pytest.raises(UserError, match=f"is a nadfit {outputs.KINDS[kind]} folder, not a nadfit "
                                        f"{outputs.KINDS[other]} folder"):
        claim_output_dir(out, other)


@pytest.mark.parametrize("spec,kind", [("sweep.toml", "sweep"), ("nadfit sbc", "sbc")])
def test_legacy_sweep_folders_are_recognised(tmp_path, spec, kind):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.json").write_text(json.dumps({"schema": "nadfit.sweep/1", "spec": spec, "tasks": {}}))
    earlier(out / "t0", "task", legacy=True)
    assert output_kind(out) == kind
    claim_output_dir(out, kind, notify=lambda m: None)
    assert (out / "t0" / "result.json").exists() and output_kind(out) == kind


def test_legacy_run_all_folder_is_recognised(tmp_path):
    out = tmp_path / "main"
    for h in ("direct", "via-nr"):
        make_run(out / "fits" / h, hypothesis=h)
    earlier(out / "comparison", "comparison", legacy=True)
    assert output_kind(out) == "run-all"
    (out / "notes.txt").write_text("mine")
    assert output_kind(out) is None  # something else in it: not recognisable as ours


def _fake_run_all_steps(monkeypatch, calls):
    import nadfit.fitting.comparison.pipeline as pipeline
    import nadfit.fitting.inference.fit as fit

    def fake_fit(cfg, out, progress=False, cores=None, **_kw):
        calls.append(("fit", Path(out)))
        with atomic_dir(out, "run", notify=lambda m: calls.append(("note", m))) as tmp:
            (tmp / "summary.json").write_text(json.dumps({"schema": "nadfit.run/1"}))
        gate = {"value": 1.0}
        return {"status": "ok", "wall_time_s": 0.0, "divergences": 0,
                "gates": {"ess_bulk_min": gate, "r_hat_max": gate}}

    def fake_compare(fits, out, **kw):
        calls.append(("compare", Path(out)))
        with atomic_dir(out, "comparison", inputs=fits) as tmp:
            (tmp / "comparison.json").write_text(json.dumps({"schema": "nadfit.comparison/1"}))
        return {}

    monkeypatch.setattr(fit, "run_fit", fake_fit)
    monkeypatch.setattr(pipeline, "run_compare", fake_compare)
    monkeypatch.setattr(pipeline, "render_run_report", lambda d, psense=None: None)


def test_run_all_resumes_its_own_folder(tmp_path, monkeypatch):
    from nadfit.fitting.comparison.pipeline import run_all

    calls = []
    _fake_run_all_steps(monkeypatch, calls)
    out = tmp_path / "main"
    run_all(out, quick=True)
    assert output_kind(out) == "run-all" and (out / ".nadfit-output").exists()
    # the three hypotheses, then mixed on the human evidence alone, then the comparison
    assert [c[0] for c in calls] == ["fit", "fit", "fit", "fit", "compare"]
    calls.clear()
    run_all(out, quick=True)  # again: every part is an earlier output of its kind
    assert [c[1] for c in calls if c[0] == "note"] == [
        f"nadfit: replaced earlier run {out / 'fits' / h}" for h in ("direct", "via-nr", "mixed")] + [
        f"nadfit: replaced earlier run {out / 'fits-human-only' / 'mixed'}"]


def test_run_all_settings_reach_every_fit(tmp_path, monkeypatch):
    """run-all --config: the file's settings reach all four fits, the options win over it, and the
    human-evidence-only fit keeps its own exclusions."""
    import nadfit.fitting.inference.fit as fit
    from nadfit.fitting.comparison.pipeline import run_all, run_all_settings

    calls, cfgs = [], []
    _fake_run_all_steps(monkeypatch, calls)
    fake = fit.run_fit
    monkeypatch.setattr(fit, "run_fit", lambda cfg, out, **kw: (cfgs.append(cfg), fake(cfg, out, **kw))[1])
    path = tmp_path / "before.toml"
    path.write_text('sampler = "nutpie"\ntarget_accept = 0.99\nretry_target_accept = false\ntune = 500\ndraws = 1000\nseed = 7\n')
    run_all(tmp_path / "main", settings=run_all_settings(path), draws=600)
    assert [c.hypothesis for c in cfgs] == ["direct", "via-nr", "mixed", "mixed"]
    assert {(c.sampler, c.target_accept, c.tune, c.draws, c.seed) for c in cfgs} == {("nutpie", 0.99, 500, 600, 7)}
    assert cfgs[-1].exclude and not cfgs[0].exclude


def test_run_all_refuses_a_foreign_part_before_the_first_fit(tmp_path, monkeypatch):
    from nadfit.fitting.comparison.pipeline import run_all

    calls = []
    _fake_run_all_steps(monkeypatch, calls)
    out = tmp_path / "main"
    claim_output_dir(out, "run-all")
    thesis(out / "fits", "mixed")
    before = tree_digest(tmp_path)
    with pytest.raises(UserError, match="fits/mixed: exists and is not a nadfit run folder"):
        run_all(out, quick=True)
    assert calls == [] and tree_digest(tmp_path) == before


def test_sweep_task_folder_of_a_user_is_not_replaced(tmp_path):
    """Inside a sweep folder, a task folder that is not a task output stays (the task fails)."""
    from nadfit.fitting.sweep.engine import task_echo

    out = tmp_path / "sw"
    claim_output_dir(out, "sweep")
    user = thesis(out, "t0")
    before = tree_digest(user)
    with pytest.raises(UserError, match="not a nadfit sweep task folder"):
        task_echo({"value": 1}, user)
    assert tree_digest(user) == before


# --- single-file outputs ------------------------------------------------------------------------
def test_bench_out_needs_force(tmp_path, capsys, monkeypatch):
    import nadfit.fitting.benchmark.bench as bench

    f = tmp_path / "bench.json"
    f.write_text("earlier\n")
    rc, _, err = run_cli(capsys, ["bench", "--quick", "--json", "--out", f])
    assert rc == 2 and err.splitlines() == [(f"nadfit: error: {f}: exists; pass --force to overwrite it or choose "
                                             "another --out")]
    assert f.read_text() == "earlier\n"
    monkeypatch.setattr(bench, "run_bench", lambda **k: {"result": 1})
    rc, _, err = run_cli(capsys, ["bench", "--quick", "--json", "--out", f, "--force"])
    assert rc == 0, err
    assert json.loads(f.read_text()) == {"result": 1}


def _fake_render(monkeypatch):
    import nadfit.fitting.comparison.assemble as assemble
    import nadfit.fitting.comparison.sensitivity as sensitivity
    import nadfit.reports.render as render

    def write(path, text="<html>new</html>"):
        Path(path).write_text(text)
        return Path(path)

    monkeypatch.setattr(sensitivity, "power_scaling", lambda run: {})
    monkeypatch.setattr(render, "render_run", lambda run, out=None, psense=None: write(out or run.dir / "report.html"))
    monkeypatch.setattr(assemble, "load_comparison", lambda folder: {})
    monkeypatch.setattr(assemble, "run_statuses", lambda comp, folder: [])
    monkeypatch.setattr(render, "render_comparison",
                        lambda comp, folder, runs, out=None: write(out or Path(folder) / "comparison.html"))


def test_report_out_needs_force_but_the_default_is_rewritten(tmp_path, capsys, monkeypatch):
    _fake_render(monkeypatch)
    run = make_run(tmp_path / "run")
    (run / "report.html").write_text("<html>old</html>")
    for argv in (["report", run], ["report", run, "--out", run / "report.html"]):
        rc, _, err = run_cli(capsys, argv)
        assert rc == 0, err
        assert (run / "report.html").read_text() == "<html>new</html>"
        (run / "report.html").write_text("<html>old</html>")
    mine = tmp_path / "mine.html"
    mine.write_text("<html>my page</html>")
    rc, _, err = run_cli(capsys, ["report", run, "--out", mine])
    assert rc == 2 and len(err.splitlines()) == 1 and "exists; pass --force" in err
    assert mine.read_text() == "<html>my page</html>"
    rc, _, err = run_cli(capsys, ["report", run, "--out", mine, "--force"])
    assert rc == 0 and mine.read_text() == "<html>new</html>"


def test_report_compare_out_needs_force(tmp_path, capsys, monkeypatch):
    _fake_render(monkeypatch)
    folder = earlier(tmp_path / "cmp", "comparison")
    rc, _, err = run_cli(capsys, ["report-compare", folder])
    assert rc == 0 and (folder / "comparison.html").exists(), err
    rc, _, err = run_cli(capsys, ["report-compare", folder])  # the default place is rewritten
    assert rc == 0, err
    mine = tmp_path / "mine.html"
    mine.write_text("mine")
    rc, _, err = run_cli(capsys, ["report-compare", folder, "--out", mine])
    assert rc == 2 and "exists; pass --force" in err and mine.read_text() == "mine"
    rc, _, err = run_cli(capsys, ["report-compare", folder, "--out", mine, "--force"])
    assert rc == 0 and mine.read_text() == "<html>new</html>"


def test_import_digitised_out_needs_force(tmp_path, capsys):
    """(The refusal itself lives in the importer, datasets/importers/webplotdigitizer.py.)"""
    inp = tmp_path / "fig.csv"
    inp.write_text("1,2\n")
    out = tmp_path / "evidence_digitised.csv"
    out.write_text("earlier rows\n")
    argv = ["datasets", "import-digitised", inp, "--study", "s", "--figure", "F1", "--x-unit", "day",
            "--y-unit", "nmol/L", "--analyte", "a", "--matrix", "serum", "--compound", "NMN", "--dose", "1",
            "--out", out]
    rc, _, err = run_cli(capsys, argv)
    assert rc == 2 and len(err.splitlines()) == 1 and "exists; pass --force" in err, err
    assert out.read_text() == "earlier rows\n"


def test_simulate_plot_needs_force(tmp_path, capsys, monkeypatch):
    import nadfit.fitting.inference.simulate as simulate

    monkeypatch.setattr(simulate, "simulate", lambda *a, **k: pytest.fail("simulated before the check"))
    png = tmp_path / "mine.png"
    png.write_bytes(b"\x89PNG mine")
    rc, _, err = run_cli(capsys, ["simulate", "--compound", "NMN", "--dose", "300", "--days", "5",
                                  "--plot", png])
    assert rc == 2 and "exists; pass --force" in err and png.read_bytes() == b"\x89PNG mine"


# --- the recogniser and the modules that write the documents agree ---------------------------------
def test_schemas_agree_with_the_writers():
    from nadfit.fitting.calibration import confusion, sbc
    from nadfit.fitting.comparison import assemble
    from nadfit.fitting.inference import runs
    from nadfit.fitting.sweep import engine

    schemas = {kind: schema for kind, _, schema in outputs.LEGACY_DOCUMENTS}
    assert schemas == {"run": runs.RUN_SCHEMA, "comparison": assemble.COMPARISON_SCHEMA,
                       "calibration": confusion.CALIBRATION_SCHEMA, "recovery": sbc.RECOVERY_SCHEMA, "task": None}
    assert outputs.SWEEP_SCHEMA == engine.SWEEP_SCHEMA


def test_source_folders_are_the_installed_packages():
    import nadfit.datasets
    import nadfit.fitting

    packages, root = outputs.source_folders()
    for mod in (nadfit.datasets, nadfit.fitting):
        assert Path(mod.__file__).resolve().parent in packages
    if root is not None:
        assert (root / "pyproject.toml").is_file() and all(p.parent == root for p in packages)
