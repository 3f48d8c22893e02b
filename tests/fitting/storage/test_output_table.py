"""The output contract, command by command: a table of forbidden ``--out`` paths × every command
that writes a folder.

Each cell runs the real command line in-process with every long step replaced by a function that
fails the test (sampling, SMC/bridge, the Dask cluster, the confusion-matrix fits): the command
must exit with status 2, print exactly one line on stderr and leave every byte, name, permission
and symlink below the test folder (and, for the shipped-datasets cells, below ``datasets/``)
unchanged. Input runs are cheap synthetic folders (``make_run``); nothing is sampled.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fitting.storage.contract_helpers import guard_long_work, thesis, tree_digest
from tests.reliability.reliability_helpers import make_run, run_cli

QUIET_COMPARE = ("--smc-runs", "0", "--no-bridge", "--no-psense")


@dataclass
class Ctx:
    tmp: Path
    monkeypatch: pytest.MonkeyPatch
    inputs: dict
    templates: Path  # synthetic runs written once per module, copied into each test folder

    def input(self, name: str) -> Path:
        return self.inputs[name]


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("template-runs")
    make_run(base / "direct", hypothesis="direct")
    make_run(base / "via-nr", hypothesis="via-nr")
    return base


def _runs(ctx: Ctx, *names: str) -> list[Path]:
    hyps = {"a": "direct", "b": "via-nr", "wa": "direct", "wb": "via-nr"}
    out = []
    for n in names:
        if n not in ctx.inputs:
            ctx.inputs[n] = Path(shutil.copytree(ctx.templates / hyps[n], ctx.tmp / "in" / n))
        out.append(ctx.inputs[n])
    return out


def _spec(ctx: Ctx) -> Path:
    if "spec" not in ctx.inputs:
        p = ctx.tmp / "in" / "spec.toml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text('[[tasks]]\nkind = "echo"\nid = "a"\nvalue = 1\n')
        ctx.inputs["spec"] = p
    return ctx.inputs["spec"]


#: command -> (kind of folder it writes, argv builder (ctx, out) -> argv, names of its inputs)
COMMANDS: dict[str, tuple[str, Callable, tuple[str, ...]]] = {
    "fit": ("run", lambda c, out: ["fit", "--quick", "--hypothesis", "direct", "--out", out], ()),
    "compare": ("comparison", lambda c, out: ["compare", *_runs(c, "a", "b"), "--out", out, *QUIET_COMPARE],
                ("a", "b")),
    "compare-wider": ("comparison", lambda c, out: ["compare", *_runs(c, "a", "b"), "--wider-runs", _runs(c, "wa")[0],
                                                    "--wider-runs", _runs(c, "wb")[0], "--out", out, *QUIET_COMPARE],
                      ("wa", "wb")),
    "run-all": ("run-all", lambda c, out: ["run-all", "--quick", "--out", out], ()),
    "run-all-wider": ("run-all", lambda c, out: ["run-all", "--quick", "--wider", "--out", out], ()),
    "compare-calibration": ("calibration", lambda c, out: ["compare-calibration", "--reps", "1", "--out", out], ()),
    "sbc": ("sbc", lambda c, out: ["sbc", "--n-sims", "2", "--workers", "1", "--out", out], ()),
    "recovery": ("recovery", lambda c, out: ["recovery", "--out", out], ()),
    "sweep": ("sweep", lambda c, out: ["sweep", _spec(c), "--workers", "1", "--out", out], ("spec",)),
}
LABEL = {"run": "run", "comparison": "comparison", "calibration": "calibration", "recovery": "recovery",
         "sweep": "sweep", "sbc": "SBC", "run-all": "run-all"}


def _prepare_inputs(ctx: Ctx, command: str) -> None:
    """Create the command's inputs before the output case (so that they are in the digest)."""
    if command.startswith("compare"):
        _runs(ctx, "a", "b")
    if command == "compare-wider":
        _runs(ctx, "wa", "wb")
    if command == "sweep":
        _spec(ctx)


def _read_only(ctx: Ctx, path: Path) -> None:
    """Make ``path`` read-only. Root may write anyway: then ``os.access`` is made to answer as it
    would for any other user (the permission bits are set all the same)."""
    path.chmod(0o555)
    if os.access(path, os.W_OK):
        real_access, target = os.access, os.path.realpath(path)

        def access(p, mode, *a, **k):
            if os.path.realpath(p) == target and mode & os.W_OK:
                return False
            return real_access(p, mode, *a, **k)

        ctx.monkeypatch.setattr(os, "access", access)


# --- output cases: (ctx, command, kind) -> (out, expected fragment, extra folders to watch) ----------
def foreign(ctx, command, kind):
    return thesis(ctx.tmp), f"exists and is not a nadfit {LABEL[kind]} folder; choose another --out or remove it", []


def hidden_file_only(ctx, command, kind):
    d = ctx.tmp / "dotted"
    d.mkdir()
    (d / ".keep").write_text("")
    return d, f"exists and is not a nadfit {LABEL[kind]} folder", []


def symlink_to_foreign(ctx, command, kind):
    target = thesis(ctx.tmp)
    link = ctx.tmp / "link"
    link.symlink_to(target, target_is_directory=True)
    return link, f"exists and is not a nadfit {LABEL[kind]} folder", []


def dot(ctx, command, kind):
    work = thesis(ctx.tmp, "work")
    ctx.monkeypatch.chdir(work)
    return Path("."), "is the current folder; choose another --out", []


def dotdot(ctx, command, kind):
    work = thesis(ctx.tmp, "work")
    ctx.monkeypatch.chdir(work / "figures")
    return Path(".."), "contains the current folder; choose another --out", []


def home(ctx, command, kind):
    h = thesis(ctx.tmp / "users", "me")
    ctx.monkeypatch.setenv("HOME", str(h))
    return h, "is the home folder; choose another --out", []


def home_parent(ctx, command, kind):
    h = thesis(ctx.tmp / "users", "me")
    ctx.monkeypatch.setenv("HOME", str(h))
    return ctx.tmp / "users", "contains the home folder; choose another --out", []


def shipped_datasets(ctx, command, kind):
    import nadfit.datasets

    d = Path(nadfit.datasets.__file__).resolve().parent
    return d, "is nadfit's own source folder", [d]


def inside_shipped_datasets(ctx, command, kind):
    import nadfit.datasets

    d = Path(nadfit.datasets.__file__).resolve().parent
    return d / "studies", "lies inside nadfit's own source folder", [d]


def repository_root(ctx, command, kind):
    from nadfit.fitting.storage.outputs import source_folders

    root = source_folders()[1]
    if root is None:
        pytest.skip("not an editable install: there is no repository root")
    ctx.monkeypatch.chdir(ctx.tmp)  # so that the source rule, not the current-folder rule, answers
    return root, "contains nadfit's own source folder", []


def read_only_empty(ctx, command, kind):
    d = ctx.tmp / "ro"
    d.mkdir()
    _read_only(ctx, d)
    return d, "output folder is not writable", []


def read_only_parent(ctx, command, kind):
    d = ctx.tmp / "locked"
    d.mkdir()
    _read_only(ctx, d)
    return d / "new", f"{d}: output directory is not writable", []  # the message names the folder


def read_only_foreign(ctx, command, kind):
    d = thesis(ctx.tmp)
    _read_only(ctx, d)
    return d, f"exists and is not a nadfit {LABEL[kind]} folder", []


def other_kind(ctx, command, kind):
    if kind == "run":
        d = ctx.tmp / "cmp"
        d.mkdir()
        (d / "comparison.json").write_text(json.dumps({"schema": "nadfit.comparison/1"}))
        (d / "COMPLETE").write_text("nadfit:comparison\n")
        return d, "exists and is a nadfit comparison folder, not a nadfit run folder", []
    d = make_run(ctx.tmp / "elsewhere" / "run", hypothesis="mixed")
    return d, f"exists and is a nadfit run folder, not a nadfit {LABEL[kind]} folder", []


def other_kind_legacy(ctx, command, kind):
    """A calibration folder written before kinds were recorded (``COMPLETE`` holds "ok")."""
    if kind == "calibration":
        pytest.skip("same kind")
    d = ctx.tmp / "cal"
    d.mkdir()
    (d / "calibration.json").write_text(json.dumps({"schema": "nadfit.calibration/1", "confusion": {}}))
    (d / "COMPLETE").write_text("ok\n")
    return d, f"exists and is a nadfit calibration folder, not a nadfit {LABEL[kind]} folder", []


def other_resumable_kind(ctx, command, kind):
    d = ctx.tmp / "sw"
    d.mkdir()
    other = "sbc" if kind == "sweep" else "sweep"
    (d / ".nadfit-output").write_text(json.dumps({"kind": other}))
    (d / "notes.txt").write_text("mine\n")
    return d, f"exists and is a nadfit {LABEL[other]} folder, not a nadfit {LABEL[kind]} folder", []


def interrupted_run(ctx, command, kind):
    """A run folder without COMPLETE is not a complete nadfit output."""
    d = make_run(ctx.tmp / "partial", complete=False)
    return d, f"exists and is not a nadfit {LABEL[kind]} folder", []


def input_run(ctx, command, kind):
    name = COMMANDS[command][2][0]
    return ctx.input(name), "is one of this command's inputs; choose another --out", []


def inside_input(ctx, command, kind):
    name = COMMANDS[command][2][0]
    return ctx.input(name) / "deeper", f"lies inside this command's input {ctx.input(name)}", []


def contains_input(ctx, command, kind):
    return ctx.tmp / "in", f"contains this command's input {ctx.tmp / 'in'}/", []


ALWAYS = (foreign, hidden_file_only, symlink_to_foreign, dot, dotdot, home, home_parent, shipped_datasets,
          inside_shipped_datasets, repository_root, read_only_empty, read_only_parent, read_only_foreign,
          other_kind, other_kind_legacy, interrupted_run)
WITH_INPUT_FOLDERS = (input_run, inside_input, contains_input)


def _cells():
    for command, (kind, _, inputs) in COMMANDS.items():
        cases = list(ALWAYS)
        if kind in ("sweep", "sbc"):
            cases.append(other_resumable_kind)
        if any(n != "spec" for n in inputs):
            cases += WITH_INPUT_FOLDERS
        elif inputs:
            cases.append(contains_input)
        for case in cases:
            yield pytest.param(command, case, id=f"{command}-{case.__name__}")


def _restore_permissions(root: Path) -> None:
    for dirpath, dirnames, _ in os.walk(root):
        for d in dirnames:
            p = Path(dirpath) / d
            if not p.is_symlink():
                p.chmod(0o755)


@pytest.mark.parametrize("command,case", list(_cells()))
def test_forbidden_out_is_refused(command, case, tmp_path, monkeypatch, capsys, templates):
    guard_long_work(monkeypatch)
    monkeypatch.setenv("NADFIT_JAX_CACHE", "off")  # the command must not create ~/.cache either
    kind, argv_of, _ = COMMANDS[command]
    ctx = Ctx(tmp_path, monkeypatch, {}, templates)
    _prepare_inputs(ctx, command)
    try:
        out, fragment, watch = case(ctx, command, kind)
        argv = argv_of(ctx, out)
        digests = {w: tree_digest(w) for w in (tmp_path, *watch)}
        rc, stdout, stderr = run_cli(capsys, argv)
        lines = stderr.splitlines()
        assert "Traceback" not in stdout + stderr, stderr
        assert rc == 2, stderr
        assert len(lines) == 1, stderr
        assert lines[0].startswith(f"nadfit: error: {out}: ") or case is read_only_parent, lines[0]
        assert fragment in lines[0], lines[0]
        for w, before in digests.items():
            assert tree_digest(w) == before, f"{w} changed"
    finally:
        _restore_permissions(tmp_path)


def test_table_covers_every_folder_writing_command():
    """Every command that takes a folder --out is in the table (a new one must be added)."""
    from nadfit.fitting.cli import _register, app

    if not app.registered_commands:
        _register()
    folder_writers = {"fit", "compare", "run-all", "compare-calibration", "sbc", "recovery", "sweep"}
    assert folder_writers <= {c.name for c in app.registered_commands}
    assert folder_writers == {name.removesuffix("-wider") for name in COMMANDS}
