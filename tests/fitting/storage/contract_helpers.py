"""Helpers for the output-contract tests: tree digests, foreign folders, a guard against long work."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path


def tree_digest(root: Path) -> str:
    """SHA-256 over every name, type, permission bit, symlink target and byte below ``root``.

    ``__pycache__`` folders are left out (importing a module may write them)."""
    root = Path(root)
    h = hashlib.sha256()
    if root.is_symlink() or not root.exists():
        h.update(f"top {os.readlink(root) if root.is_symlink() else 'absent'}\n".encode())
        return h.hexdigest()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        rel = os.path.relpath(dirpath, root)
        h.update(f"D {rel} {stat.S_IMODE(os.lstat(dirpath).st_mode):o}\n".encode())
        names = sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))])
        for name in names:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                h.update(f"L {rel}/{name} -> {os.readlink(p)}\n".encode())
            else:
                with open(p, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
                h.update(f"F {rel}/{name} {stat.S_IMODE(st.st_mode):o} {digest}\n".encode())
    return h.hexdigest()


def thesis(tmp: Path, name: str = "mythesis") -> Path:
    """A user's folder that nadfit did not write (the issue's reproduction)."""
    folder = Path(tmp) / name
    folder.mkdir(parents=True)
    (folder / "chapter1.tex").write_text("\\chapter{Introduction}\nTwo years of work.\n")
    (folder / "figures").mkdir()
    (folder / "figures" / "fig1.pdf").write_bytes(b"%PDF-1.5\n" + bytes(range(256)))
    return folder


def guard_long_work(monkeypatch) -> None:
    """Make every long step fail the test: sampling, SMC/bridge, the Dask cluster, the benchmark."""
    import nadfit.fitting.benchmark.bench as bench
    import nadfit.fitting.calibration.confusion as confusion
    import nadfit.fitting.comparison.marginal as marginal
    import nadfit.fitting.inference.fit as fit
    import nadfit.fitting.sweep.engine as engine

    def boom(*a, **k):
        raise AssertionError("long work started although --out should have been refused")

    monkeypatch.setattr(fit, "sample_posterior", boom)
    monkeypatch.setattr(marginal, "bridge_log_ml", boom)
    monkeypatch.setattr(marginal, "smc_log_ml", boom)
    monkeypatch.setattr(engine, "_client", boom)
    monkeypatch.setattr(confusion, "confusion_matrix", boom)
    monkeypatch.setattr(bench, "run_bench", boom)
