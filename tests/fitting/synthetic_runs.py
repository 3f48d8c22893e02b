"""Tiny synthetic run folders (no sampling) with the real run-folder structure."""

import json

import numpy as np
import xarray as xr

from nadfit.fitting.inference.runs import RUN_SCHEMA


def make_run(path, hypothesis, loglik, evidence_ids, study_ids, fingerprint="f" * 64, status="ok", mixed=False):
    path.mkdir(parents=True, exist_ok=True)
    chains, draws, _ = loglik.shape
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "evidence_id": list(evidence_ids)}
    rng = np.random.default_rng(0)
    post = {"loglik_item": (("chain", "draw", "evidence_id"), loglik),
            "sigma_arm": (("chain", "draw"), np.abs(rng.normal(0.1, 0.01, (chains, draws))))}
    if mixed:
        post["mu_phi"] = (("chain", "draw"), rng.normal(0, 1, (chains, draws)))
        post["tau_phi"] = (("chain", "draw"), np.abs(rng.normal(1, 0.1, (chains, draws))))
        post["z_phi"] = (("chain", "draw", "phi_system"), rng.normal(0, 1, (chains, draws, 2)))
        coords["phi_system"] = ["gut", "cells"]
    dt = xr.DataTree.from_dict({
        "posterior": xr.Dataset(post, coords=coords),
        "log_likelihood": xr.Dataset({"evidence": (("chain", "draw", "evidence_id"), loglik)}, coords=coords),
        "observed_data": xr.Dataset({"study_id": (("evidence_id",), np.array(study_ids, dtype=str))},
                                    coords={"evidence_id": list(evidence_ids)}),
    })
    dt.attrs.update({"hypothesis": hypothesis, "config": json.dumps({"hypothesis": hypothesis, "widen_priors": 1.0}),
                     "evidence_fingerprint": fingerprint})
    dt.to_netcdf(path / "posterior.nc", engine="h5netcdf")
    summary = {"schema": RUN_SCHEMA, "hypothesis": hypothesis, "status": status, "evidence_ids": list(evidence_ids),
               "evidence_fingerprint": fingerprint, "parameters": {}, "gates": {}, "wall_time_s": 1.0}
    (path / "summary.json").write_text(json.dumps(summary))
    (path / "COMPLETE").write_text("ok\n")
    return path
