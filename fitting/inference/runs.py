"""Fitted run folders: validation and the one loader used by compare, predict, report and reloo.

A run folder written by ``nadfit fit`` holds ``posterior.nc`` (xarray DataTree, netCDF/h5netcdf),
``summary.json``, ``config.json`` and, written last, ``COMPLETE``. Readers refuse folders without
``COMPLETE`` or with a schema they do not know.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from nadfit.datasets.errors import UserError
from nadfit.fitting.inference.config import FitConfig, select_evidence
from nadfit.fitting.storage.files import read_json

RUN_SCHEMA = "nadfit.run/1"
#: entries every reader relies on, with their JSON types
SUMMARY_FIELDS = {"hypothesis": str, "status": str, "evidence_ids": list, "evidence_fingerprint": str}


#: files of which at least one is in every folder that nadfit wrote (finished or interrupted)
_FOLDER_MARKERS = {"run": ("summary.json", "posterior.nc", "config.json"), "comparison": ("comparison.json",)}


def check_run_dir(run: Path, kind: str = "run") -> Path:
    """Validate a run folder before use; one clear error otherwise."""
    run = Path(run)
    if not run.exists():
        raise UserError(f"{kind} folder does not exist", file=str(run))
    if not run.is_dir():
        raise UserError(f"{kind} path is not a folder", file=str(run))
    if not any(run.iterdir()):
        raise UserError(f"{kind} folder is empty", file=str(run))
    from nadfit.fitting.storage.outputs import KINDS, output_kind

    found = output_kind(run)
    if found is not None and found != kind:  # another nadfit output: say which, and what to give instead
        hint = {("run-all", "run"): "give one of its fits/<hypothesis> folders",
                ("run-all", "comparison"): "give its comparison folder",
                ("comparison", "run"): "give a run folder (one of the compared fits); 'nadfit report-compare' "
                                       "renders comparison folders",
                ("run", "comparison"): "give a folder written by 'nadfit compare'; 'nadfit report' renders run "
                                       "folders"}.get((found, kind), f"give a nadfit {kind} folder")
        raise UserError(f"this is a nadfit {KINDS[found]} folder, not a {kind} folder; {hint}", file=str(run))
    markers = _FOLDER_MARKERS.get(kind, ())
    if not (run / "COMPLETE").exists() and markers and not any((run / m).exists() for m in markers):
        writer = "'nadfit compare' or 'nadfit run-all'" if kind == "comparison" else "'nadfit fit' or 'nadfit run-all'"
        raise UserError(f"not a nadfit {kind} folder (no {', '.join(markers)} or COMPLETE); "
                        f"give a folder written by {writer}", file=str(run))
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


def load_summaries(run_dirs) -> list[dict]:
    """The summaries of the runs a comparison needs (at least two), each checked as by
    :func:`load_summary`: the cheap checks of ``compare``, before anything heavy is loaded."""
    if len(run_dirs) < 2:
        raise UserError("compare needs at least two run folders", field="RUN_DIR")
    return [load_summary(Path(d)) for d in run_dirs]


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


#: groups of posterior.nc every consumer of a run relies on
REQUIRED_GROUPS = ("posterior", "log_likelihood", "observed_data")


@dataclass
class FittedRun:
    """A fitted run as every consumer needs it: folder, summary, settings, evidence, posterior.

    ``evidence`` is the run's *own* selection (its ``evidence``/``exclude`` settings applied to
    the shipped dossier), ``config`` the settings it was fitted with; ``evidence_changed`` says
    whether the shipped rows differ from those the run was fitted to (fingerprints differ).
    """

    dir: Path
    summary: dict
    config: FitConfig
    evidence: object  # pandas DataFrame, or None when the shipped evidence cannot be re-selected
    dt: object  # xarray DataTree
    evidence_problem: str | None = None

    @property
    def hypothesis(self) -> str:
        return self.summary["hypothesis"]

    @property
    def evidence_changed(self) -> bool:
        from nadfit.datasets import evidence_fingerprint

        return self.evidence is None or evidence_fingerprint(self.evidence) != self.summary["evidence_fingerprint"]

    def model(self):
        """The EvidenceModel of this run: its hypothesis, evidence selection and observation settings.
        Refuses (one line) a run whose posterior lacks a parameter of the current model (fitted by
        an earlier model version)."""
        from nadfit.models.model import EvidenceModel

        if self.evidence is None:
            raise UserError(f"the run's evidence cannot be re-selected ({self.evidence_problem})", file=str(self.dir))
        model = EvidenceModel(self.hypothesis, self.evidence, self.config.settings())
        if self.dt is not None and "posterior" in self.dt.children:
            have = set(self.dt["posterior"].data_vars)
            missing = [n for n in (*model.scalar_parameters, *model.vector_parameters) if n not in have]
            if missing:
                raise UserError(f"the run was fitted by an earlier model version (its posterior lacks "
                                f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}); refit it",
                                file=str(self.dir))
        return model

    def require_current_evidence(self) -> None:
        """Refuse to rebuild a model when the shipped evidence changed since the fit."""
        if self.evidence_changed:
            raise UserError("the shipped evidence changed since this run was fitted; refit it", file=str(self.dir))


def run_config(run: Path, summary: dict, dt=None) -> FitConfig:
    """The FitConfig a run was fitted with (config.json, else the posterior's attribute)."""
    path = Path(run) / "config.json"
    if path.exists():
        data = read_json(path, "config.json")
    else:
        try:
            data = json.loads((dt.attrs.get("config") if dt is not None else None) or "{}")
        except ValueError:
            raise UserError("posterior.nc has a damaged 'config' attribute", file=str(run)) from None
    try:
        return FitConfig(**data) if data else FitConfig(hypothesis=summary["hypothesis"])
    except TypeError:
        raise UserError("config.json holds settings this nadfit version does not know; refit the run",
                        file=str(path)) from None


def load_run(run: Path, *, posterior: bool = True, groups: tuple[str, ...] = ()) -> FittedRun:
    """Load a run folder written by ``nadfit fit`` (the one loader; errors are one line)."""
    from nadfit.datasets import load_evidence

    run = Path(run)
    summary = load_summary(run)
    dt = load_posterior(run) if posterior else None
    missing = [g for g in groups if dt is not None and g not in dt.children]
    if missing:
        raise UserError(f"posterior.nc lacks the group(s) {', '.join(missing)}; the run is damaged or was written "
                        "by an incompatible nadfit version", file=str(run / "posterior.nc"))
    cfg = run_config(run, summary, dt)
    try:
        evidence, problem = select_evidence(load_evidence(), cfg.evidence, cfg.exclude), None
    except UserError as err:
        evidence, problem = None, str(err)
    return FittedRun(dir=run, summary=summary, config=cfg, evidence=evidence, dt=dt, evidence_problem=problem)
