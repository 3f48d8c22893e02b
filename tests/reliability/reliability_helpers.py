"""Shared helpers for the reliability tests: CLI runner and tiny synthetic run folders.

A synthetic run folder has the real layout (``posterior.nc`` with posterior / log_likelihood /
observed_data groups, ``summary.json``, ``config.json``, ``COMPLETE``) but a few draws of made-up
numbers, so commands can load and cross-check it without any sampling.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

EVIDENCE_IDS = ("EV001", "EV002", "EV003")
STUDY_IDS = ("s1", "s1", "s2")


def run_cli(capsys, argv: list[str]) -> tuple[int, str, str]:
    """Run ``nadfit argv`` in-process; returns (exit code, stdout, stderr)."""
    from nadfit.fitting.cli import main

    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def tmp_leftovers(folder: Path) -> list[str]:
    """Hidden temporary/backup siblings left behind by atomic_dir."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


def write_posterior(path: Path, hypothesis: str, *, evidence_ids=EVIDENCE_IDS, study_ids=STUDY_IDS,
                    fingerprint: str = "a" * 64, chains: int = 1, draws: int = 8, groups=None,
                    extra_attrs: dict | None = None, seed: int = 0) -> Path:
    import xarray as xr

    rng = np.random.default_rng(seed)
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "evidence_id": list(evidence_ids)}
    ll = -np.abs(rng.normal(0.0, 1.0, (chains, draws, len(evidence_ids))))
    all_groups = {
        "posterior": xr.Dataset({"gamma": (("chain", "draw"), rng.lognormal(0, 0.1, (chains, draws))),
                                 "loglik_item": (("chain", "draw", "evidence_id"), ll)}, coords=coords),
        "log_likelihood": xr.Dataset({"evidence": (("chain", "draw", "evidence_id"), ll)}, coords=coords),
        "observed_data": xr.Dataset({"study_id": (("evidence_id",), np.array(study_ids, dtype=str))},
                                    coords={"evidence_id": list(evidence_ids)}),
    }
    keep = groups if groups is not None else list(all_groups)
    dt = xr.DataTree.from_dict({g: all_groups[g] for g in keep})
    dt.attrs.update({"nadfit_schema": "nadfit.run/1", "hypothesis": hypothesis, "seed": 1,
                     "config_hash": "0" * 16, "evidence_fingerprint": fingerprint,
                     "evidence_ids": json.dumps(list(evidence_ids)),
                     "config": json.dumps({"hypothesis": hypothesis, "widen_priors": 1.0})})
    dt.attrs.update(extra_attrs or {})
    dt.to_netcdf(path, engine="h5netcdf")
    return path


def make_run(path: Path, hypothesis: str = "direct", *, status: str = "ok", fingerprint: str = "a" * 64,
             evidence_ids=EVIDENCE_IDS, study_ids=STUDY_IDS, schema: str = "nadfit.run/1",
             complete: bool = True, groups=None) -> Path:
    """A tiny run folder (no sampling)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    write_posterior(path / "posterior.nc", hypothesis, evidence_ids=evidence_ids, study_ids=study_ids,
                    fingerprint=fingerprint, groups=groups)
    summary = {"schema": schema, "hypothesis": hypothesis, "status": status, "seed": 1,
               "evidence_ids": list(evidence_ids), "evidence_fingerprint": fingerprint,
               "config_hash": "0" * 16, "parameters": {}, "gates": {}, "wall_time_s": 0.1}
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "config.json").write_text(json.dumps({"hypothesis": hypothesis}))
    if complete:
        (path / "COMPLETE").write_text("ok\n")
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Relative path -> bytes of every file below ``folder`` (to prove nothing changed)."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
