"""The output contract: which folders and files nadfit may write or replace, and atomic writes.

One implementation for every command that writes (``fit``, ``compare``, ``run-all``,
``compare-calibration``, ``sbc``, ``recovery``, ``sweep`` write folders; ``bench``, ``report``,
``report-compare``, ``simulate --plot`` and ``datasets import-digitised`` write single files).

Folders. An output folder may be written only if it does not exist, is empty, or is a nadfit
output *of the same kind*, recognised by its marker:

* atomic outputs (run, comparison, calibration, recovery, sweep task) end with a ``COMPLETE``
  file holding ``nadfit:<kind>``; legacy ``COMPLETE`` files holding ``ok`` are recognised by
  their JSON document (``summary.json``, ``comparison.json``, ``calibration.json``,
  ``recovery.json``, ``result.json``);
* multi-step, resumable outputs (sweep, sbc, run-all) get a ``.nadfit-output`` file
  (``{"kind": ...}``) when they start, so an interrupted one is recognised and resumed; legacy
  ones are recognised by ``sweep.json`` or (run-all) by holding only ``fits/``,
  ``fits-wider-priors/`` and ``comparison/`` nadfit outputs.

Anything else is refused with one line before any long work, as is an output that is, contains
or lies inside one of the command's inputs, that is or contains the current folder or the home
folder, or that touches nadfit's own source folders. Paths are compared after resolving
symlinks; messages name the path as the user gave it.

An atomic output is written to a hidden temporary sibling folder and moved into place with
``os.replace``; an interrupted command leaves the previous complete result or nothing. The
target is checked again just before that rename; an earlier result that is replaced is reported
on stderr.

Files. A single-file output never overwrites an existing file unless the command got ``--force``
(``check_output_file``).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from nadfit.datasets.errors import UserError

#: kind -> how it is named in messages ("a nadfit run folder", "replaced earlier run ...")
KINDS: dict[str, str] = {
    "run": "run",
    "comparison": "comparison",
    "calibration": "calibration",
    "recovery": "recovery",
    "task": "sweep task",
    "sweep": "sweep",
    "sbc": "SBC",
    "run-all": "run-all",
    "calibrate": "calibration sweep",
}
#: kinds written in several steps and resumable: marked at the start, not completed atomically
RESUMABLE = frozenset({"sweep", "sbc", "run-all", "calibrate"})
COMPLETE = "COMPLETE"
MARKER = ".nadfit-output"
#: legacy atomic outputs (``COMPLETE`` holding "ok"): kind, its document, the document's schema.
#: The schema strings are those of inference.runs, comparison.assemble, calibration.confusion and
#: calibration.sbc (repeated here: storage sits below them; tests check they agree).
LEGACY_DOCUMENTS: tuple[tuple[str, str, str | None], ...] = (
    ("run", "summary.json", "nadfit.run/1"),
    ("comparison", "comparison.json", "nadfit.comparison/1"),
    ("calibration", "calibration.json", "nadfit.calibration/1"),
    ("recovery", "recovery.json", "nadfit.recovery/1"),
    ("task", "result.json", None),
)
SWEEP_SCHEMA = "nadfit.sweep/1"
SBC_SWEEP_SOURCE = "nadfit sbc"  # the ``spec`` entry of an SBC folder's sweep.json
#: a run-all folder: folders of runs, and one comparison
RUN_ALL_RUNS = ("fits", "fits-wider-priors")
RUN_ALL_COMPARISON = "comparison"

_SMALL = 4096  # COMPLETE / marker files larger than this are not nadfit's
_DOCUMENT_MAX = 256 * 2**20


def _label(kind: str) -> str:
    return f"{KINDS[kind]} folder"


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# recognising nadfit outputs
# ---------------------------------------------------------------------------------------------
def _read_bytes(path: Path, limit: int) -> bytes | None:
    try:
        if not path.is_file():
            return None
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError:
        return None
    return data if len(data) <= limit else None


def _text(path: Path, limit: int = _SMALL) -> str | None:
    data = _read_bytes(path, limit)
    try:
        return None if data is None else data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _json_object(path: Path, limit: int = _DOCUMENT_MAX) -> dict | None:
    text = _text(path, limit)
    if text is None:
        return None
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _legacy_run_all(folder: Path) -> bool:
    """A run-all folder from before markers: only fits/, fits-wider-priors/ and comparison/."""
    entries = list(folder.iterdir())
    if not entries or any(p.name not in (*RUN_ALL_RUNS, RUN_ALL_COMPARISON) or p.is_symlink() for p in entries):
        return False
    for p in entries:
        if p.name == RUN_ALL_COMPARISON:
            if output_kind(p) != "comparison":
                return False
            continue
        if not p.is_dir():
            return False
        runs = list(p.iterdir())
        if not runs or any(r.is_symlink() or output_kind(r) != "run" for r in runs):
            return False
    return True


def output_kind(folder: Path) -> str | None:
    """The kind of nadfit output ``folder`` holds (see the module docstring), else None."""
    folder = Path(folder)
    try:
        if not folder.is_dir():
            return None
        for name in (COMPLETE, MARKER):  # a marker name that is not a plain file: not ours
            p = folder / name
            if os.path.lexists(p) and (p.is_symlink() or not p.is_file()):
                return None
        if (folder / COMPLETE).is_file():
            text = _text(folder / COMPLETE)
            if text is None:
                return None
            if text.startswith("nadfit:"):
                kind = text[len("nadfit:"):].strip()
                return kind if kind in KINDS and kind not in RESUMABLE else None
            if text.strip() == "ok":  # legacy: written before kinds were recorded
                for kind, name, schema in LEGACY_DOCUMENTS:
                    doc = _json_object(folder / name)
                    if doc is not None and (schema is None or doc.get("schema") == schema):
                        return kind
            return None
        if (folder / MARKER).is_file():
            doc = _json_object(folder / MARKER, _SMALL)
            kind = doc.get("kind") if doc else None
            return kind if isinstance(kind, str) and kind in RESUMABLE else None
        manifest = _json_object(folder / "sweep.json")
        if manifest is not None and manifest.get("schema") == SWEEP_SCHEMA:
            return "sbc" if manifest.get("spec") == SBC_SWEEP_SOURCE else "sweep"
        if _legacy_run_all(folder):
            return "run-all"
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------------------------
# places never to write
# ---------------------------------------------------------------------------------------------
def _real(path) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


@functools.lru_cache(maxsize=1)
def source_folders() -> tuple[tuple[Path, ...], Path | None]:
    """nadfit's own package folders and, for an editable install, the repository root holding them.

    Read from the import system (nothing is imported but the ``nadfit`` namespace)."""
    import importlib.util

    packages: list[Path] = []
    for name in ("nadfit.datasets", "nadfit.models", "nadfit.reports", "nadfit.fitting"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        for location in (spec.submodule_search_locations or []) if spec else []:
            packages.append(_real(location))
    root = None
    parents = {p.parent for p in packages}
    if len(parents) == 1:
        parent = parents.pop()
        if (parent / "pyproject.toml").is_file():
            root = parent  # editable install: the repository (runs/ inside it are fine)
        else:
            packages.append(parent)  # an installed nadfit/ folder
    return tuple(packages), root


def _relation(out: Path, other: Path) -> str | None:
    if out == other:
        return "is"
    if other.is_relative_to(out):
        return "contains"
    if out.is_relative_to(other):
        return "lies inside"
    return None


def _refuse_protected(real: Path, where: str, inputs) -> None:
    def refuse(message: str):
        raise UserError(f"{message}; choose another --out", file=where)

    for given in inputs or ():
        rel = _relation(real, _real(given))
        if rel == "is":
            refuse("is one of this command's inputs")
        if rel:
            refuse(f"{rel} this command's input {given}")
    packages, root = source_folders()
    for pkg in packages:
        rel = _relation(real, pkg)
        if rel:
            refuse(f"{rel} nadfit's own source folder {pkg}")
    if root is not None and _relation(real, root) in ("is", "contains"):
        refuse(f"{_relation(real, root)} nadfit's source tree {root}")
    home = os.path.expanduser("~")
    if home != "~" and _relation(real, _real(home)) in ("is", "contains"):
        refuse(f"{_relation(real, _real(home))} the home folder")
    try:
        cwd = _real(os.getcwd())
    except OSError:  # the current folder was removed
        cwd = None
    if cwd is not None and _relation(real, cwd) in ("is", "contains"):
        refuse(f"{_relation(real, cwd)} the current folder")


def _check_parent(out: Path) -> None:
    """The nearest existing ancestor of ``out`` must be a writable folder (nothing is created)."""
    parent = out.parent if str(out.parent) else Path(".")
    for anc in (parent, *parent.parents):
        if anc.exists():
            if not anc.is_dir():
                raise UserError("output path lies inside a file, not a folder", file=str(anc))
            if not os.access(anc, os.W_OK | os.X_OK):
                raise UserError("output directory is not writable", file=str(anc))
            return


# ---------------------------------------------------------------------------------------------
# folders
# ---------------------------------------------------------------------------------------------
def _plan(out: Path, kind: str, inputs) -> tuple[Path, str]:
    """Check ``out`` against the contract; returns (real path, "absent" | "empty" | "same")."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind {kind!r}")
    where = str(out)
    if out.is_symlink() and not out.exists():
        raise UserError("is a symbolic link to nothing; choose another --out", file=where)
    if out.exists() and not out.is_dir():
        raise UserError("output path exists and is not a directory", file=where)
    real = _real(out)
    _refuse_protected(real, where, inputs)
    _check_parent(out)
    if real.parent != _real(out.parent):  # out is a symlink: its target's folder is written too
        _check_parent(real)
    if not real.exists():
        return real, "absent"
    try:
        empty = not any(real.iterdir())
    except OSError as exc:
        raise UserError(f"cannot read the output folder ({exc.strerror})", file=where) from None
    state = "empty"
    if not empty:
        found = output_kind(real)
        if found is None:
            raise UserError(f"exists and is not a nadfit {_label(kind)}; choose another --out or remove it",
                            file=where)
        if found != kind:
            raise UserError(f"exists and is a nadfit {_label(found)}, not a nadfit {_label(kind)}; "
                            "choose another --out or remove it", file=where)
        state = "same"
    if not os.access(real, os.W_OK | os.X_OK):
        raise UserError("output folder is not writable", file=where)
    return real, state


def check_output_dir(out: Path, kind: str = "run", *, inputs=()) -> Path:
    """Refuse an output folder the contract forbids (one-line :class:`UserError`); writes nothing.

    ``kind``: the kind of output the command writes (a key of ``KINDS``); ``inputs``: the
    command's input files and folders. Returns ``out`` unchanged."""
    out = Path(out)
    _plan(out, kind, inputs)
    return out


def _mkdir(path: Path, where: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder ({exc.strerror})", file=str(where)) from None


def claim_output_dir(out: Path, kind: str, *, inputs=(), notify=_stderr) -> Path:
    """Start (or resume) a multi-step output: check it, create it and write its marker.

    Returns the real folder (symlinks resolved) to write into."""
    if kind not in RESUMABLE:
        raise ValueError(f"{kind!r} outputs are written with atomic_dir")
    out = Path(out)
    real, state = _plan(out, kind, inputs)
    _mkdir(real, out)
    if state == "same":
        notify(f"nadfit: reusing earlier {KINDS[kind]} {out}")
    if not (real / MARKER).is_file():
        write_text_atomic(real / MARKER, json.dumps({"kind": kind}) + "\n")
    return real


def _keep(tmp: Path, real: Path) -> Path:
    """Move a finished result that cannot go to ``real`` to a visible sibling; returns it."""
    kept = real.parent / f"{real.name}.nadfit-new-{os.getpid()}"
    os.replace(tmp, kept)
    return kept


def _commit(tmp: Path, out: Path, real: Path, kind: str, inputs, notify) -> None:
    try:
        _, state = _plan(out, kind, inputs)  # again: the folder may have changed meanwhile
    except UserError as err:
        raise UserError(f"{err.message}; the new result was kept in {_keep(tmp, real)}", file=err.file) from None
    if state != "same":
        try:
            os.replace(tmp, real)  # rename(2) replaces an empty folder only
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise
            raise UserError(f"appeared meanwhile and is not a nadfit {_label(kind)}; the new result was kept "
                            f"in {_keep(tmp, real)}", file=str(out)) from None
        return
    old = real.parent / f".{real.name}.old-{os.getpid()}"
    os.replace(real, old)
    if output_kind(old) != kind:  # changed between the check and the move: put it back untouched
        os.replace(old, real)
        raise UserError(f"changed meanwhile and is no longer a nadfit {_label(kind)}; the new result was kept "
                        f"in {_keep(tmp, real)}", file=str(out))
    try:
        os.replace(tmp, real)
    except BaseException:  # put the earlier result back
        if not real.exists():
            os.replace(old, real)
        raise
    shutil.rmtree(old, ignore_errors=True)
    notify(f"nadfit: replaced earlier {KINDS[kind]} {out}")


@contextlib.contextmanager
def atomic_dir(out: Path, kind: str = "run", *, inputs=(), notify=_stderr):
    """Yield a temporary folder; on success it replaces ``out`` atomically, else it is removed.

    ``out`` is checked first (``check_output_dir``) and again just before the rename; ``COMPLETE``
    (holding ``nadfit:<kind>``) is written last. Replacing an earlier result is reported through
    ``notify`` (stderr). SIGTERM is turned into KeyboardInterrupt while inside, so a terminated
    run cleans up too.
    """
    if kind in RESUMABLE:
        raise ValueError(f"{kind!r} outputs are written with claim_output_dir")
    out = Path(out)
    real, _ = _plan(out, kind, inputs)
    _mkdir(real.parent, out.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{real.name}.tmp-", dir=real.parent))
    os.chmod(tmp, 0o755)
    previous = signal.getsignal(signal.SIGTERM)

    def _term(signum, frame):
        raise KeyboardInterrupt

    try:
        with contextlib.suppress(ValueError):  # not in the main thread
            signal.signal(signal.SIGTERM, _term)
        yield tmp
        (tmp / COMPLETE).write_text(f"nadfit:{kind}\n")
        _commit(tmp, out, real, kind, inputs, notify)
    finally:
        with contextlib.suppress(ValueError):
            signal.signal(signal.SIGTERM, previous)
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------------------------
def check_output_file(out: Path, *, force: bool = False, inputs=()) -> Path:
    """Refuse an output *file* path that cannot or may not be written (before any long work).

    An existing file is overwritten only with ``force``; an input of the command never."""
    out = Path(out)
    if out.is_dir():
        raise UserError("output path is a folder; give a file name", file=str(out))
    if out.is_symlink() and not out.exists():
        raise UserError("is a symbolic link to nothing; choose another --out", file=str(out))
    real = _real(out)
    if any(_real(p) == real for p in inputs or ()):
        raise UserError("is one of this command's inputs; choose another --out", file=str(out))
    _check_parent(out)
    if out.exists() and not force:
        raise UserError("exists; pass --force to overwrite it or choose another --out", file=str(out))
    return out


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file beside ``path`` and rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")
