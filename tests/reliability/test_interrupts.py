"""Interrupted runs leave the previous complete result or nothing (never a partial folder).

Real subprocesses, no monkeypatching in the test process: a child enters
``fitting.runs.atomic_dir(out)``, writes a partial file, says READY and sleeps; the test sends
SIGTERM or SIGINT. One further case goes through the real ``nadfit fit`` command line (evidence
loading, model build, pre-flight check, atomic folder) with only the sampler replaced inside the
child by a sleep, and checks the CLI's one-line message and exit status 130.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from reliability_helpers import make_run, snapshot, tmp_leftovers

REPO = Path(__file__).resolve().parents[2]
PY = sys.executable

CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from nadfit.fitting.storage.outputs import atomic_dir

    out = Path(sys.argv[1])
    with atomic_dir(out) as tmp:
        (tmp / "posterior.nc").write_bytes(b"partial")
        (tmp / "summary.json").write_text("{")
        print("READY", tmp, flush=True)
        time.sleep(120)
    print("FINISHED", flush=True)
""")

CLI_CHILD = textwrap.dedent("""
    import sys, time
    import nadfit.fitting.inference.fit as fit

    def slow_sampler(pm_model, cfg, progress=False, cores=None, **_kw):
        print("READY", flush=True)
        time.sleep(120)

    fit.sample_posterior = slow_sampler
    from nadfit.fitting.cli import main
    sys.exit(main(["fit", "--quick", "--hypothesis", "direct", "--out", sys.argv[1]]))
""")


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _start(code: str, out: Path, timeout: float = 240.0):
    # a test run started in the background (``pytest &``) inherits SIGINT as *ignored*, and
    # Python then installs no KeyboardInterrupt handler: give the child the default disposition,
    # as an interactive user's Ctrl-C would find it
    proc = subprocess.Popen([PY, "-c", code, str(out)], cwd=str(out.parent), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + timeout
    line = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("READY") or not line:
            break
    if not line.startswith("READY"):
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"child never became ready:\n{err}")
    return proc, line.split(maxsplit=1)[1].strip() if " " in line.strip() else None


def _interrupt(proc, sig) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("child did not stop after the signal")
    return proc.returncode, err


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupt_leaves_nothing(tmp_path, sig):
    out = tmp_path / "run"
    proc, tmp = _start(CHILD, out)
    assert tmp and Path(tmp).is_dir() and Path(tmp).parent == tmp_path
    rc, err = _interrupt(proc, sig)
    assert rc != 0, err
    assert not out.exists()
    assert not Path(tmp).exists()
    assert tmp_leftovers(tmp_path) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_replacement_keeps_the_earlier_run(tmp_path, sig):
    out = make_run(tmp_path / "run", hypothesis="direct")
    before = snapshot(out)
    proc, tmp = _start(CHILD, out)
    rc, err = _interrupt(proc, sig)
    assert rc != 0, err
    assert snapshot(out) == before
    assert tmp_leftovers(tmp_path) == []
    from nadfit.fitting.inference.runs import load_summary

    assert load_summary(out)["hypothesis"] == "direct"


def test_completed_replacement_swaps_atomically(tmp_path):
    from nadfit.fitting.storage.outputs import atomic_dir

    out = make_run(tmp_path / "run", hypothesis="direct")
    with atomic_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert (out / "new.txt").read_text() == "new" and (out / "COMPLETE").exists()
    assert not (out / "summary.json").exists()  # the old folder is replaced, not merged
    assert tmp_leftovers(tmp_path) == []


def test_exception_inside_leaves_the_earlier_run(tmp_path):
    from nadfit.fitting.storage.outputs import atomic_dir

    out = make_run(tmp_path / "run", hypothesis="direct")
    before = snapshot(out)
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "posterior.nc").write_bytes(b"partial")
            raise RuntimeError("sampler crashed")
    assert snapshot(out) == before and tmp_leftovers(tmp_path) == []


def test_failed_swap_restores_the_earlier_run(tmp_path, monkeypatch):
    """If moving the new folder into place fails after the old one was moved aside, it comes back."""
    import nadfit.fitting.storage.outputs as runs

    out = make_run(tmp_path / "run", hypothesis="direct")
    before = snapshot(out)
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # old -> aside succeeded; tmp -> out fails
            raise OSError("disk full")
        return real(src, dst)

    monkeypatch.setattr(runs.os, "replace", flaky)
    with pytest.raises(OSError):
        with runs.atomic_dir(out) as tmp:
            (tmp / "x").write_text("new")
    monkeypatch.setattr(runs.os, "replace", real)
    assert snapshot(out) == before
    assert tmp_leftovers(tmp_path) == []


def test_cli_fit_interrupted_by_sigterm(tmp_path):
    """``nadfit fit`` terminated while sampling: exit 130, one line, no run folder, no temp folder."""
    out = tmp_path / "run"
    proc, _ = _start(CLI_CHILD, out)
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name], "the temporary folder should exist now"
    rc, err = _interrupt(proc, signal.SIGTERM)
    assert rc == 130, err
    assert "Traceback" not in err
    assert "nadfit: interrupted; no partial results were kept" in err.splitlines()[-1]
    assert not out.exists() and tmp_leftovers(tmp_path) == []


def test_folder_without_complete_is_refused(tmp_path):
    from nadfit.datasets.errors import UserError
    from nadfit.fitting.inference.runs import load_posterior, load_summary

    run = make_run(tmp_path / "run", complete=False)
    json.loads((run / "summary.json").read_text())  # the files themselves are fine
    for loader in (load_summary, load_posterior):
        with pytest.raises(UserError, match="incomplete") as err:
            loader(run)
        assert str(err.value).startswith(f"{run}: run folder is incomplete (interrupted or still running)")
