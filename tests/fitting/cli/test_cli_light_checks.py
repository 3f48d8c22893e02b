"""A user's mistake is reported before the heavy libraries load (#18): the one-line error of a
bad option, run folder or --out must not wait for JAX, PyMC or pandas (seconds each).

Each case runs the CLI in a fresh interpreter and reports which heavy modules were imported by
the time the command returned; a check placed after a heavy import makes this test fail."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("jax", "pymc", "pytensor", "pandas", "arviz", "xarray")

SCRIPT = r"""
import json, sys
from nadfit.fitting.cli import main
rc = main(sys.argv[1:])
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"rc": rc, "heavy": heavy}}))
"""


@pytest.mark.parametrize("args", [
    ["fit", "--hypothesis", "bogus", "--out", "{tmp}/a"],
    ["fit", "--draws", "0", "--out", "{tmp}/a"],
    ["fit", "--out", "{tmp}/stranger"],
    ["compare", "--out", "{tmp}/c", "{tmp}/missing1"],
    ["compare", "--out", "{tmp}/c", "{tmp}/missing1", "{tmp}/missing2"],
    ["compare", "--smc-draws", "3", "--out", "{tmp}/c", "{tmp}/m1", "{tmp}/m2"],
    ["run-all", "--out", "{tmp}/stranger"],
    ["run-all", "--chains", "0", "--out", "{tmp}/b"],
    ["report", "{tmp}/missing1"],
    ["plan-trial", "{tmp}/m1", "{tmp}/m2", "--arm", "NMN:300", "--per-arm", "1"],
    ["plan-trial", "{tmp}/m1", "--arm", "NMN:300"],
], ids=lambda a: " ".join(a[:3]))
def test_bad_input_is_refused_before_any_heavy_import(tmp_path, args):
    (tmp_path / "stranger").mkdir()
    (tmp_path / "stranger" / "notes.txt").write_text("a user's file\n")
    argv = [a.format(tmp=tmp_path) for a in args]
    out = subprocess.run([sys.executable, "-c", SCRIPT.format(heavy=HEAVY), *argv], capture_output=True,
                         text=True, timeout=120)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["rc"] == 2, out.stderr
    err = [x for x in out.stderr.splitlines() if x.strip()]
    assert len(err) == 1 and err[0].startswith("nadfit: error:"), out.stderr
    assert res["heavy"] == [], f"{' '.join(args[:2])}: imported {res['heavy']} before refusing: {err[0]}"
    assert (tmp_path / "stranger" / "notes.txt").read_text() == "a user's file\n"
