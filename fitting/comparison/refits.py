"""Exact leave-one-study-out refits on the sweep engine (``compare --refit-studies``).

For a study whose PSIS-LOO estimate is unreliable (Pareto k > 0.7), the run is refitted without
that study (the run's own settings, ``exclude`` + the study; shorter sampling) and the study is
scored on the refit's draws with the full model:
elpd_study = log mean_s p(study | theta_s), p(study | theta) = exp(sum of the study's primary
log-likelihood terms). Each refit is one task of kind ``study_refit`` (``sweep.engine.TASK_KINDS``)
writing ``result.json``; the tasks run on Dask workers like any sweep.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np

from nadfit.datasets.errors import UserError

#: sampling of each exact refit unless the caller says otherwise (2 chains; draws = tune)
REFIT_DRAWS = 300
REFIT_CHAINS = 2


def study_of_labels(labels: list[str], evidence) -> list[str]:
    """Study of each unit label of the primary variable: rows map through the evidence table;
    labels that are not evidence ids are studies themselves."""
    of = dict(zip(evidence["evidence_id"].astype(str), evidence["study_id"].astype(str)))
    return [of.get(u, u) for u in labels]


def unit_exclusions(model, study: str) -> list[str]:
    """Evidence selectors that leave out the whole study unit ``study`` of ``model``: the study,
    and rows of other study ids that the evidence map joins to one of its claims (Yi 2022's
    post-hoc finding, study ``yi2022_posthoc``, is part of the claim of study ``yi2022``). The
    leave-one-study-out PSIS estimate leaves the unit out, so the exact refit must too."""
    other = sorted({model.items[i].evidence_id for c in model.claims if c.study_id == study for i in c.rows
                    if model.items[i].study_id != study})
    return [study, *other]


def study_refit_elpd(run_dir: str | Path, study: str, draws: int = REFIT_DRAWS, tune: int = REFIT_DRAWS,
                     chains: int = REFIT_CHAINS, cores: int | None = None) -> dict:
    """Refit the run without ``study`` and score the study on the refit draws (exact LOSO)."""
    from dataclasses import replace

    from nadfit.fitting.comparison.assemble import PRIMARY_VAR, exact_elpd
    from nadfit.fitting.inference.build import build_pymc_model
    from nadfit.fitting.inference.config import select_evidence
    from nadfit.fitting.inference.fit import sample_posterior
    from nadfit.fitting.inference.pointwise import pointwise_draws, theta_draws
    from nadfit.fitting.inference.runs import load_run
    from nadfit.models.model import EvidenceModel

    t0 = time.time()
    run = load_run(Path(run_dir), posterior=False)
    run.require_current_evidence()
    cfg = run.config
    full = run.model()
    _, labels = full.unit_labels[PRIMARY_VAR]
    studies = study_of_labels(list(labels), run.evidence)
    cols = [i for i, s in enumerate(studies) if s == study]
    if not cols:
        raise UserError(f"study {study!r} has no scored term in this run", file=str(run_dir))
    left_out = unit_exclusions(full, study)
    sub = replace(cfg, draws=draws, tune=tune, chains=chains, exclude=[*cfg.exclude, *left_out])
    reduced = EvidenceModel(cfg.hypothesis, select_evidence(run.evidence, [], left_out), cfg.settings())
    dt = sample_posterior(build_pymc_model(reduced, widen=cfg.widen_priors), sub, cores=cores)
    ll = pointwise_draws(full, theta_draws(dt["posterior"], full))[PRIMARY_VAR][:, cols].sum(-1)
    n_chains = dt["posterior"].sizes["chain"]
    elpd, mcse = exact_elpd(ll.reshape(n_chains, -1))
    div = int(np.asarray(dt["sample_stats"]["diverging"].values).sum()) if "sample_stats" in dt.children else 0
    return {"hypothesis": cfg.hypothesis, "study": study, "elpd": elpd if math.isfinite(elpd) else None,
            "elpd_mcse": mcse if math.isfinite(elpd) else None,
            "n_terms": len(cols), "draws": draws, "tune": tune, "chains": chains, "divergences": div,
            "wall_time_s": round(time.time() - t0, 2)}


def task_study_refit(params: dict, out: Path) -> dict:
    """Sweep task kind ``study_refit``: params ``run_dir``, ``study``, optional ``draws``, ``tune``, ``chains``."""
    from nadfit.fitting.inference.fit import worker_cores
    from nadfit.fitting.storage.outputs import atomic_dir, write_json

    res = study_refit_elpd(params["run_dir"], params["study"], draws=int(params.get("draws", REFIT_DRAWS)),
                           tune=int(params.get("tune", REFIT_DRAWS)), chains=int(params.get("chains", REFIT_CHAINS)),
                           cores=worker_cores())
    with atomic_dir(out, "task") as tmp:
        write_json(tmp / "result.json", res)
    return {"elpd": res["elpd"], "wall_time_s": res["wall_time_s"]}


def refit_tasks(todo: dict[str, tuple[str, list[str]]], draws: int = REFIT_DRAWS, chains: int = REFIT_CHAINS) -> list:
    """Sweep tasks for ``todo[hypothesis] = (run_dir, [study, ...])``."""
    from nadfit.fitting.sweep.engine import Task, _safe_id

    return [Task(_safe_id(f"refit-{h}-{s}"), "study_refit",
                 {"run_dir": str(Path(d).resolve()), "study": s, "draws": draws, "tune": draws, "chains": chains})
            for h, (d, studies) in todo.items() for s in studies]


def refit_studies(todo: dict[str, tuple[str, list[str]]], draws: int = REFIT_DRAWS, chains: int = REFIT_CHAINS,
                  workers: int = 2, log=lambda *_: None) -> tuple[dict, dict, dict]:
    """Run the exact refits on the sweep engine (temporary sweep folder). Returns
    ``({hypothesis: {study: elpd}}, {hypothesis: {study: Monte Carlo SE of that elpd}}, cost)``;
    a failed refit keeps its PSIS value and is listed."""
    from nadfit.fitting.sweep import engine as sweep

    tasks = refit_tasks(todo, draws=draws, chains=chains)
    cost = {"n_refits": len(tasks), "draws": draws, "tune": draws, "chains": chains, "workers": workers,
            "wall_time_s": 0.0, "task_wall_s": {}, "failed": []}
    if not tasks:
        return {}, {}, cost
    t0 = time.time()
    out: dict[str, dict] = {}
    mcse: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="nadfit-study-refits-") as tmp:
        def done(entry, n, total):
            log(f"exact study refit {n}/{total}: {entry['id']} ({entry['status']})")

        manifest = sweep.run_sweep(sweep.SweepSpec(tasks=tasks, source="compare --refit-studies"),
                                   Path(tmp) / "sweep", workers=workers, on_done=done, aggregate=False)
        for t in tasks:
            e = manifest["tasks"][t.id]
            res_file = Path(tmp) / "sweep" / t.id / "result.json"
            if e.get("status") != "done" or not res_file.exists():
                cost["failed"].append({"task": t.id, "error": e.get("error", "no result")})
                continue
            import json

            res = json.loads(res_file.read_text())
            cost["task_wall_s"][t.id] = res["wall_time_s"]
            if res["elpd"] is not None:
                out.setdefault(res["hypothesis"], {})[res["study"]] = float(res["elpd"])
                mcse.setdefault(res["hypothesis"], {})[res["study"]] = res.get("elpd_mcse")
    cost["wall_time_s"] = round(time.time() - t0, 1)
    return out, mcse, cost
