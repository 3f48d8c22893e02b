"""The output contract: which folders and files nadfit may write or replace, and atomic writes.

Everything is first written to a hidden temporary sibling folder (or file) and moved into place
with ``os.replace``; an interrupted command therefore leaves either the previous complete result
or nothing. """

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

from nadfit.datasets.errors import UserError


def check_output_dir(out: Path) -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("output path exists and is not a directory", file=str(out))
    _check_parent(out)
    return out


def check_output_file(out: Path) -> Path:
    """Refuse an output *file* path that cannot be written (checked before any long work)."""
    out = Path(out)
    if out.is_dir():
        raise UserError("output path is a folder; give a file name", file=str(out))
    _check_parent(out)
    return out


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _check_parent(out: Path) -> None:
    parent = out.parent if str(out.parent) else Path(".")
    for anc in (parent, *parent.parents):  # a file where a folder is needed
        if anc.exists():
            if not anc.is_dir():
                raise UserError("output path lies inside a file, not a folder", file=str(anc))
            break
    if not parent.exists():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the output folder ({exc.strerror})", file=str(parent)) from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError("output directory is not writable", file=str(parent))


@contextlib.contextmanager
def atomic_dir(out: Path):
    """Yield a temporary folder; on success it replaces ``out`` atomically, else it is removed.

    SIGTERM is turned into KeyboardInterrupt while inside, so a terminated run cleans up too.
    """
    out = check_output_dir(Path(out))
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, 0o755)
    previous = signal.getsignal(signal.SIGTERM)

    def _term(signum, frame):
        raise KeyboardInterrupt

    try:
        with contextlib.suppress(ValueError):  # not in the main thread
            signal.signal(signal.SIGTERM, _term)
        yield tmp
        (tmp / "COMPLETE").write_text("ok\n")
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.replace(out, old)
            try:
                os.replace(tmp, out)
            except BaseException:  # put the earlier result back
                if not out.exists():
                    os.replace(old, out)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")



