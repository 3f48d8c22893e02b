"""Sweep engine (Dask distributed): spec validation, retry after a killed worker, resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nadfit.datasets.errors import UserError
from nadfit.fitting.sweep import engine as sweep


def _spec(tmp_path: Path, text: str, name="spec.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_spec_generators_expand(tmp_path):
    spec = sweep.load_spec(_spec(tmp_path, """
hypotheses = ["direct", "mixed"]
prior_widen = [1, 2]
sbc = {hypothesis = "via-nr", n_sims = 3, rank_draws = 9}
loso = {hypothesis = "mixed"}
[defaults]
draws = 50
tune = 50
chains = 1
[[fits]]
id = "no yi"
hypothesis = "mixed"
exclude = ["yi2022"]
[[tasks]]
kind = "echo"
value = 3
"""))
    ids = [t.id for t in spec.tasks]
    assert {"fit-direct-widen1", "fit-direct-widen2", "fit-mixed-widen1", "fit-mixed-widen2"} <= set(ids)
    assert [i for i in ids if i.startswith("sbc-")] == ["sbc-via-nr-0000", "sbc-via-nr-0001", "sbc-via-nr-0002"]
    loso = [t for t in spec.tasks if t.id.startswith("loso-")]
    assert len(loso) >= 5 and all(len(t.params["exclude"]) == 1 for t in loso)
    assert "no_yi" in ids and "echo-000" in ids
    fit = next(t for t in spec.tasks if t.id == "fit-mixed-widen2")
    assert fit.params["widen_priors"] == 2.0 and fit.params["draws"] == 50
    sbc = next(t for t in spec.tasks if t.id == "sbc-via-nr-0001")
    assert sbc.params == {"hypothesis": "via-nr", "sim": 1, "seed": 20261122, "draws": 50, "tune": 50,
                          "chains": 1, "rank_draws": 9}
    assert spec.groups == {"sbc": {"via-nr": ["sbc-via-nr-0000", "sbc-via-nr-0001", "sbc-via-nr-0002"]}}
    # YAML works the same
    y = sweep.load_spec(_spec(tmp_path, "tasks:\n  - {kind: echo, id: a}\n", "s.yaml"))
    assert [t.id for t in y.tasks] == ["a"]


@pytest.mark.parametrize("text,where", [
    ("hypotheses = ['nope']", "hypotheses"),
    ("bogus = 1", "spec.bogus"),
    ("sbc = {hypothesis = 'mixed'}", "sbc.n_sims"),
    ("sbc = {hypothesis = 'mixed', n_sims = 0}", "sbc.n_sims"),
    ("sbc = {hypothesis = 'mixed', n_sims = 2, draws = 10, chains = 1}", "sbc.draws"),
    ("[[fits]]\nhypothesis = 'mixed'\ndraws = -3", "fits[0].draws"),
    ("[[fits]]\nhypothesis = 'mixed'\nexclude = ['nostudy']", "fits[0].evidence"),
    ("[[fits]]\ndraws = 3", "fits[0].hypothesis"),
    ("[[fits]]\nhypothesis = 'mixed'\ncolour = 'red'", "fits[0].colour"),
    ("[[tasks]]\nkind = 'rocket'", "tasks[0].kind"),
    ("[[tasks]]\nkind = 'echo'\nid = 'a'\n[[tasks]]\nkind = 'echo'\nid = 'a'", "id"),
    ("prior_widen = [0]", "prior_widen"),
    ("", None),
    ("x = [", None),
])
def test_spec_errors_are_one_line(tmp_path, text, where):
    path = _spec(tmp_path, text)
    with pytest.raises(UserError) as ei:
        sweep.load_spec(path)
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith(str(path))
    if where:
        assert ei.value.field == where, msg


def test_missing_spec_file(tmp_path):
    with pytest.raises(UserError, match="cannot read sweep spec"):
        sweep.load_spec(tmp_path / "nope.toml")


def _echo_spec(tmp_path: Path, n: int = 4) -> Path:
    marker = tmp_path / "killed-once"
    logs = tmp_path / "log"
    lines = []
    for i in range(n):
        lines += ["[[tasks]]", 'kind = "echo"', f'id = "t{i}"', f"value = {i}", "sleep = 1.0", f'log_dir = "{logs}"']
        if i == 1:
            lines.append(f'crash_once = "{marker}"')
    return _spec(tmp_path, "\n".join(lines) + "\n")


def test_sweep_survives_killed_worker_and_resumes(tmp_path):
    spec = _echo_spec(tmp_path)
    out = tmp_path / "out"
    seen = []
    manifest = sweep.run_sweep(spec, out, workers=2, on_done=lambda e, k, n: seen.append((e["id"], k, n)))
    # the worker running t1 was SIGKILLed on the first attempt; the task was retried and finished
    assert (tmp_path / "killed-once").exists()
    assert manifest["finished"] and manifest["n_done"] == 4 and manifest["n_failed"] == 0
    assert sorted(i for i, _, _ in seen) == ["t0", "t1", "t2", "t3"] and [k for _, k, _ in seen] == [1, 2, 3, 4]
    logs = {p.stem: p.read_text().split() for p in (tmp_path / "log").glob("*.log")}
    assert len(logs["t1"]) == 2 and logs["t1"][0] != logs["t1"][1]  # two attempts, two processes
    for i in range(4):
        res = json.loads((out / f"t{i}" / "result.json").read_text())
        assert res["value"] == i and res["jax_platforms"] == "cpu"
        assert (out / f"t{i}" / "COMPLETE").exists()
    on_disk = json.loads((out / "sweep.json").read_text())
    assert on_disk["n_done"] == 4 and all(e["status"] == "done" for e in on_disk["tasks"].values())
    assert not list(out.glob(".*tmp*"))

    # resume: nothing is executed again
    before = {k: len(v) for k, v in logs.items()}
    manifest2 = sweep.run_sweep(spec, out, workers=2)
    after = {p.stem: len(p.read_text().split()) for p in (tmp_path / "log").glob("*.log")}
    assert after == before
    assert manifest2["n_skipped"] == 4 and manifest2["n_done"] == 0
    assert all(e["status"] == "skipped" for e in manifest2["tasks"].values())

    # a task whose folder is missing (e.g. deleted) is rerun, the others stay skipped
    import shutil

    shutil.rmtree(out / "t2")
    manifest3 = sweep.run_sweep(spec, out, workers=1)
    assert manifest3["n_done"] == 1 and manifest3["tasks"]["t2"]["status"] == "done"
    assert len((tmp_path / "log" / "t2.log").read_text().split()) == 2


def test_cli_sweep_runs_and_reports(tmp_path, capsys):
    from nadfit.fitting.cli import main

    spec = _spec(tmp_path, '[[tasks]]\nkind = "echo"\nid = "a"\nvalue = 1\n')
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--workers", "1", "--out", str(out)]) == 0
    assert (out / "a" / "COMPLETE").exists()
    first = capsys.readouterr().err
    assert "[1/1] a done" in first and "done 1, skipped 0, failed 0" in first
    assert main(["sweep", str(tmp_path / "missing.toml"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cannot read sweep spec" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_small_sbc_through_sweep(tmp_path):
    """A real, small SBC (8 simulations) through the sweep on 2 workers."""
    from nadfit.fitting.calibration.sbc import run_sbc

    doc = run_sbc("via-nr", 8, tmp_path / "sbc", draws=100, tune=150, chains=1, rank_draws=19, workers=2)
    assert doc["n_sims"] + len(doc["failed_sims"]) == 8
    assert doc["n_sims"] >= 6
    assert (tmp_path / "sbc" / "sbc_ranks.png").stat().st_size > 0
    ranks = doc["ranks"]["beta"]
    assert all(0 <= r <= 19 for r in ranks)
    print(json.dumps({k: doc[k] for k in ("n_sims", "bins", "all_pass", "wall_time_s", "low_ess_sims")}))


def test_a_task_releases_the_compiled_programs_of_its_worker(tmp_path, monkeypatch):
    """A worker runs task after task, each compiling new programs: JAX's in-memory caches are
    emptied when a task ends, also when it fails (measured: a calibration worker grew ~1 GB per
    task without this)."""
    import jax

    f = jax.jit(lambda x: x + 1.0)
    f(1.0)
    assert f._cache_size() == 1
    monkeypatch.setattr(sweep, "THREAD_ENV", {})  # keep this process's thread settings
    sweep.execute_task("echo", sweep.TASK_KINDS["echo"], {"value": 1}, str(tmp_path / "a"))
    assert f._cache_size() == 0
    f(1.0)
    with pytest.raises(TypeError):  # a task that fails
        sweep.execute_task("echo", "nadfit.fitting.sweep.engine:resolve", {}, str(tmp_path / "b"))
    assert f._cache_size() == 0
