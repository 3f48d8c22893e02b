"""Run folders: atomic creation, validation on load.

A run folder written by ``nadfit fit`` holds ``posterior.nc`` (xarray DataTree, netCDF/h5netcdf),
``summary.json``, ``config.json`` and, written last, ``COMPLETE``. Everything is first written to
a hidden temporary sibling folder and moved into place with ``os.replace``; an interrupted run
therefore leaves either the previous complete result or nothing. Readers refuse folders without
``COMPLETE`` or with a schema they do not know. Loading never unpickles or evaluates anything:
netCDF holds arrays and string attributes only, JSON is parsed with ``json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path

from datasets.errors import UserError

RUN_SCHEMA = "nadfit.run/1"
COMPARISON_SCHEMA = "nadfit.comparison/1"
#: entries every reader relies on, with their JSON types
SUMMARY_FIELDS = {"hypothesis": str, "status": str, "evidence_ids": list, "evidence_fingerprint": str}


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


def read_json(path: Path, what: str) -> dict:
    try:
        obj = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{what} is missing", file=str(path)) from None
    except IsADirectoryError:
        raise UserError(f"{what} is a folder, not a file", file=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise UserError(f"{what} is not valid JSON ({exc.__class__.__name__})", file=str(path)) from None
    if not isinstance(obj, dict):
        raise UserError(f"{what} is not a JSON object", file=str(path))
    return obj


def check_run_dir(run: Path, kind: str = "run") -> Path:
    """Validate a run folder before use; one clear error otherwise."""
    run = Path(run)
    if not run.exists():
        raise UserError(f"{kind} folder does not exist", file=str(run))
    if not run.is_dir():
        raise UserError(f"{kind} path is not a folder", file=str(run))
    if not any(run.iterdir()):
        raise UserError(f"{kind} folder is empty", file=str(run))
    if not (run / "COMPLETE").exists():
        raise UserError(f"{kind} folder is incomplete (interrupted or still running); refit it", file=str(run))
    return run


def load_summary(run: Path) -> dict:
    run = check_run_dir(run)
    summary = read_json(run / "summary.json", "summary.json")
    if summary.get("schema") != RUN_SCHEMA:
        raise UserError(f"run was written by an incompatible nadfit version (schema {summary.get('schema')!r}, "
                        f"expected {RUN_SCHEMA!r})", file=str(run / "summary.json"))
    for key, kind in SUMMARY_FIELDS.items():
        if not isinstance(summary.get(key), kind):
            raise UserError(f"summary.json lacks a valid {key!r} entry; the file is damaged, refit the run",
                            file=str(run / "summary.json"), field=key)
    return summary


def load_posterior(run: Path):
    """Open posterior.nc as an xarray DataTree (arrays only; nothing is executed)."""
    import xarray as xr

    run = check_run_dir(run)
    path = run / "posterior.nc"
    if not path.exists():
        raise UserError("posterior.nc is missing", file=str(path))
    try:
        dt = xr.open_datatree(path, engine="h5netcdf")
        dt.load()
    except Exception as exc:  # truncated or corrupted file
        raise UserError(f"posterior.nc cannot be read ({exc.__class__.__name__}); the file is truncated or corrupted",
                        file=str(path)) from None
    if "posterior" not in dt.children:
        raise UserError("posterior.nc has no posterior group", file=str(path))
    return dt


def read_mapping_file(path: Path, what: str, mapping_message: str) -> dict:
    """Parse a TOML (``.toml``) or YAML (anything else, safe loader) file that must hold a mapping.

    Every failure is a one-line UserError naming the file: unreadable, not UTF-8, not valid
    TOML/YAML, or not a mapping (``mapping_message``).
    """
    import tomllib

    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read {what} ({exc.strerror})", file=str(path)) from None
    except UnicodeDecodeError:
        raise UserError(f"{what} is not UTF-8 text", file=str(path)) from None
    toml = path.suffix == ".toml"
    try:
        data = tomllib.loads(text) if toml else yaml.safe_load(text)
    except Exception as exc:
        raise UserError(f"{what} is not valid {'TOML' if toml else 'YAML'} ({exc.__class__.__name__})",
                        file=str(path)) from None
    if not isinstance(data, dict):
        raise UserError(mapping_message, file=str(path))
    return data
