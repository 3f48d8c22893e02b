"""``nadfit bench --compare-samplers``: the NUTS samplers of ``nadfit fit`` on the real posteriors.

Per hypothesis, in one run (so that the ratios share the machine's load):

* ``today``: nutpie (JAX backend, low-rank mass matrix), target_accept 0.99, the settings before
  issue #16 (:data:`TODAY`);
* ``default``: the current :class:`~nadfit.fitting.inference.config.FitConfig` defaults, on all the
  cores this process may use, and again pinned to one core (parallel speed-up of the chains).

Each fit runs in its own child process (``python -m nadfit.fitting.benchmark.samplers SPEC``): the
host CPU device count (one device per chain, :mod:`nadfit.fitting.inference.devices`) must be
fixed before JAX starts, and the one-core case pins the child with ``os.sched_setaffinity``. The
child builds the PyMC model exactly as ``nadfit fit`` does and samples with the same function
(``inference.fit.sample_posterior``). Reported per fit: wall time of sampling, the part of it
JAX spent tracing and compiling (or loading from the persistent cache; JAX's monitoring events),
min bulk ESS and max R-hat over the parameters (as the gates), divergences, gradient evaluations
of the kept draws (leapfrog steps, ``n_steps``; tuning steps are not reported by every sampler)
per effective draw, ESS per second of sampling (compile excluded), and the cost of one log density
+ gradient (jitted, median of repeated calls at the initial point).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

HYPOTHESES = ("direct", "via-nr", "mixed")
#: the inference settings before issue #16 (nutpie, target_accept 0.99, 500 tuning steps; no
#: retry at a higher target_accept, which 0.99 leaves no room for, and no continuation)
TODAY = {"sampler": "nutpie", "target_accept": 0.99, "tune": 500, "draws": 1000, "chains": 4, "dense_mass": False,
         "retry_target_accept": None, "max_draws": 0}
#: quick mode: checks that every case runs and the JSON has its shape (numbers are not a benchmark)
QUICK = {"draws": 30, "tune": 30, "chains": 2, "hypotheses": ("direct",), "evidence": ["yi2022"]}


def default_settings() -> dict:
    from dataclasses import asdict

    from nadfit.fitting.inference.config import FitConfig

    d = asdict(FitConfig())
    return {k: d[k] for k in TODAY}


def cases(hypotheses=HYPOTHESES, cores: int | None = None, quick: bool = False) -> list[dict]:
    """The fits of one bench run: per hypothesis today's path (all cores), the default (all cores)
    and the default on one core."""
    cores = cores or len(os.sched_getaffinity(0))
    out = []
    for h in hypotheses:
        for label, settings, c in (("today", TODAY, cores), ("default", default_settings(), cores),
                                   ("default, 1 core", default_settings(), 1)):
            s = dict(settings)
            if quick:
                s.update({k: QUICK[k] for k in ("draws", "tune", "chains")})
            out.append({"label": label, "hypothesis": h, "cores": c, "settings": s,
                        "evidence": QUICK["evidence"] if quick else []})
    return out


# ------------------------------------------------------------------------------------------------
# child process: one fit
# ------------------------------------------------------------------------------------------------

def _pin(cores: int) -> list[int]:
    allowed = sorted(os.sched_getaffinity(0))
    use = allowed[:max(1, min(cores, len(allowed)))]
    os.sched_setaffinity(0, use)
    return use


def logp_grad_cost_ms(pm_model, n: int = 50) -> float:
    """Median wall time of one jitted log density + gradient at the model's initial point (ms)."""
    import jax
    import numpy as np
    from pymc.sampling.jax import get_jaxified_logp

    logp = get_jaxified_logp(pm_model, negative_logp=False)
    f = jax.jit(jax.value_and_grad(lambda xs: logp(xs)))
    x0 = [jax.numpy.asarray(v) for v in pm_model.initial_point().values()]
    jax.block_until_ready(f(x0))
    times = []
    for _ in range(n):
        t = time.perf_counter()
        jax.block_until_ready(f(x0))
        times.append(time.perf_counter() - t)
    return float(np.median(times) * 1000.0)


def run_case(spec: dict) -> dict:
    """One fit as described by ``spec`` (see :func:`cases`); call in a fresh process."""
    pinned = _pin(spec["cores"])
    from nadfit.fitting.inference.devices import configure_host_devices

    s = spec["settings"]
    configure_host_devices(max(s["chains"], len(pinned)))
    # the persistent compilation cache: the folder reaches this process through the environment
    # that ``nadfit`` set before starting it (``fitting.cli.enable_compile_cache``)
    import jax
    import numpy as np

    from nadfit.datasets import load_evidence
    from nadfit.fitting.inference.build import build_pymc_model
    from nadfit.fitting.inference.config import FitConfig, select_evidence
    from nadfit.fitting.inference.fit import sample_posterior, summarise
    from nadfit.fitting.inference.xla_progress import compile_seconds
    from nadfit.models.model import EvidenceModel

    cfg = FitConfig(hypothesis=spec["hypothesis"], evidence=list(spec["evidence"]), seed=spec.get("seed", 20261122),
                    **s).validate()
    model = EvidenceModel(cfg.hypothesis, select_evidence(load_evidence(), cfg.evidence, cfg.exclude), cfg.settings())
    pm_model = build_pymc_model(model)
    cost_ms = logp_grad_cost_ms(pm_model)
    c0 = compile_seconds()
    t0 = time.time()
    dt = sample_posterior(pm_model, cfg, cores=len(pinned))
    wall = time.time() - t0
    compile_s = compile_seconds() - c0
    rows = summarise(dt, model, cfg)
    ess = min(r["ess_bulk"] for r in rows.values() if r["ess_bulk"] is not None)
    rhat = max(r["r_hat"] for r in rows.values() if r["r_hat"] is not None)
    stats = dt["sample_stats"]
    grads = int(stats["n_steps"].sum()) if "n_steps" in stats else None
    sample_s = max(wall - compile_s, 1e-9)
    return {**spec, "cpus": pinned, "devices": jax.local_device_count(), "wall_s": round(wall, 2),
            "compile_s": round(compile_s, 2), "sample_s": round(sample_s, 2), "ess_bulk_min": round(ess, 1),
            "r_hat_max": rhat, "divergences": int(stats["diverging"].sum()),
            "ess_per_s": round(ess / sample_s, 3), "gradient_evaluations_draws": grads,
            "gradients_per_effective_draw": round(grads / ess, 1) if grads else None,
            "logp_grad_ms": round(cost_ms, 4), "mean_tree_steps": float(np.mean(stats["n_steps"])) if grads else None}


# ------------------------------------------------------------------------------------------------
# parent: every case, then the ratios
# ------------------------------------------------------------------------------------------------

def run_sampler_bench(hypotheses=HYPOTHESES, quick: bool = False, log=lambda msg: None) -> dict:
    load_start = os.getloadavg()
    results = []
    for spec in cases(tuple(hypotheses) if not quick else QUICK["hypotheses"], quick=quick):
        log(f"bench samplers: {spec['hypothesis']} {spec['label']} ({spec['settings']['sampler']}, "
            f"target_accept {spec['settings']['target_accept']}, {spec['cores']} core(s))")
        proc = subprocess.run([sys.executable, "-m", "nadfit.fitting.benchmark.samplers", json.dumps(spec)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            results.append({**spec, "error": tail[0]})
            log(f"  failed: {tail[0]}")
            continue
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        log(f"  {r['sample_s']:.0f} s sampling + {r['compile_s']:.0f} s compile, min ESS {r['ess_bulk_min']:.0f}, "
            f"{r['divergences']} divergences, ESS/s {r['ess_per_s']:.2f}")
    machine = {"cpus": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)),
               "load_avg_1min_start": round(load_start[0], 2), "load_avg_1min_end": round(os.getloadavg()[0], 2),
               "python": sys.version.split()[0]}
    return {"kind": "samplers", "quick": quick, "machine": machine, "results": results, "ratios": ratios(results)}


def ratios(results: list[dict]) -> dict:
    """Per hypothesis: ESS/s of the default over today's, and the default's speed-up from the
    second core (sampling time on 1 core / on all cores)."""
    out = {}
    by = {(r["hypothesis"], r["label"]): r for r in results if "error" not in r}
    for h in dict.fromkeys(r["hypothesis"] for r in results):
        today, new, one = by.get((h, "today")), by.get((h, "default")), by.get((h, "default, 1 core"))
        out[h] = {
            "ess_per_s_default_over_today": round(new["ess_per_s"] / today["ess_per_s"], 2) if new and today else None,
            "parallel_speedup": round(one["sample_s"] / new["sample_s"], 2) if new and one else None,
        }
    return out


def format_sampler_report(res: dict) -> str:
    m = res["machine"]
    lines = [f"nadfit bench --compare-samplers: {m['usable_cpus']} of {m['cpus']} cpus, load average (1 min) "
             f"{m['load_avg_1min_start']} at the start, {m['load_avg_1min_end']} at the end"
             + (" (quick: a shape check, not a benchmark)" if res["quick"] else ""), "",
             "| hypothesis | case | sampler | target_accept | cores | sampling s | compile s | min ESS | max R-hat "
             "| divergences | ESS/s | grads / eff. draw | logp+grad ms |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in res["results"]:
        s = r["settings"]
        if "error" in r:
            lines.append(f"| {r['hypothesis']} | {r['label']} | {s['sampler']} | {s['target_accept']} | {r['cores']} "
                         f"| failed: {r['error']} |")
            continue
        lines.append(f"| {r['hypothesis']} | {r['label']} | {s['sampler']} | {s['target_accept']} | {r['cores']} "
                     f"| {r['sample_s']:.0f} | {r['compile_s']:.0f} | {r['ess_bulk_min']:.0f} | {r['r_hat_max']:.3f} "
                     f"| {r['divergences']} | {r['ess_per_s']:.2f} | {r['gradients_per_effective_draw']} "
                     f"| {r['logp_grad_ms']:.3f} |")
    lines.append("")
    for h, q in res["ratios"].items():
        lines.append(f"{h}: ESS/s default / today = {q['ess_per_s_default_over_today']}, "
                     f"speed-up from 1 to all cores = {q['parallel_speedup']}")
    return "\n".join(lines)


if __name__ == "__main__":  # child process of run_sampler_bench
    import warnings

    warnings.simplefilter("ignore")
    print(json.dumps(run_case(json.loads(sys.argv[1]))))
