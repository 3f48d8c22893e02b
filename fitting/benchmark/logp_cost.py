"""Cost of one log density + gradient of the full EvidenceModel (``nadfit bench --logp-cost``).

For each hypothesis: CPU time per call of the jitted ``value_and_grad`` of the total
log-likelihood at the prior median, of the blood course alone (``EvidenceModel.blood``, summed)
and of the rest (the log-likelihood with the blood course held at its value), single-threaded
XLA, median and minimum over batches of calls after compilation (on a loaded machine the minimum
is the least disturbed measurement). A call from Python also pays the dispatch of the parameter
dict (~0.5 ms for 33 arrays), which a sampler compiled whole by XLA never pays; so each is also
timed inside one XLA loop (``*_loop_ms``: wall time per evaluation of a ``fori_loop`` of
evaluations, best of 3), the cost the numpyro sampler sees.

With a reference source tree (e.g. ``git worktree add ../ref 84382e3``), the same measurement
runs on that tree's ``nadfit`` too, in separate processes that alternate with this tree's (so both
see the same machine load), and the report gives new / reference ratios (issue #15: within 2x of
the pre-within-day commit). This file is also run as a script inside those processes, so it
imports nothing from nadfit at module level and works on older trees (before
``EvidenceModel.log_density``, the total is the sum of ``loglik_and_pred``'s terms).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HYPOTHESES = ("direct", "via-nr", "mixed")
#: single-threaded XLA: the per-call cost without thread scheduling noise on a shared machine
XLA_SINGLE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
#: the package folders of a source tree (installed as nadfit.<name>)
PACKAGES = ("datasets", "models", "reports", "fitting")
#: the measurements whose new / reference ratio is reported
RATIO_KEYS = ("logp_grad_ms", "logp_grad_min_ms", "logp_grad_loop_ms", "blood_grad_ms", "blood_grad_min_ms",
              "blood_grad_loop_ms", "rest_grad_ms", "rest_grad_min_ms", "rest_grad_loop_ms")


def _cpu_ms_per_call(f, x, calls: int, batch: int = 10) -> tuple[float, float]:
    """(median, minimum) over batches of the process CPU time per call (ms), after one warm call."""
    import jax

    jax.block_until_ready(f(x))
    per = []
    for _ in range(max(calls // batch, 3)):
        t0 = time.process_time()
        for _ in range(batch):
            jax.block_until_ready(f(x))
        per.append((time.process_time() - t0) / batch)
    return 1e3 * statistics.median(per), 1e3 * min(per)


def _loop_ms_per_call(f, th: dict, calls: int, reps: int = 3) -> float:
    """Wall ms per ``value_and_grad(f)`` evaluated ``calls`` times inside one jitted ``fori_loop``
    (each evaluation depends on the last, so none is hoisted); best of ``reps``."""
    import jax
    from jax.flatten_util import ravel_pytree

    x0, unravel = ravel_pytree(th)
    vg = jax.value_and_grad(lambda x: f(unravel(x)))

    @jax.jit
    def run(x):
        def body(_, carry):
            x, acc = carry
            v, g = vg(x)
            return x + 1e-30 * g, acc + v
        return jax.lax.fori_loop(0, calls, body, (x, 0.0))

    jax.block_until_ready(run(x0))
    best = math.inf
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(run(x0))
        best = min(best, (time.perf_counter() - t0) / calls)
    return 1e3 * best


def measure(hypotheses=HYPOTHESES, calls: int = 200) -> dict:
    """Per hypothesis: logp + gradient and blood-course + gradient cost (ms) of the importable nadfit."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    from nadfit.datasets import load_evidence
    from nadfit.models.model import EvidenceModel

    ev = load_evidence()
    out = {}
    for h in hypotheses:
        model = EvidenceModel(h, ev)
        th = model.prior_median_theta()
        if hasattr(model, "log_density"):
            logp = model.log_density
        else:  # trees before the study-level likelihood
            logp = lambda t, m=model: jnp.sum(m.loglik_and_pred(t)[0])  # noqa: E731
        blood = lambda t, m=model: sum(jnp.sum(v) for v in m.blood(t).values())  # noqa: E731
        t0 = time.perf_counter()
        vg = jax.jit(jax.value_and_grad(logp))
        jax.block_until_ready(vg(th))
        compile_s = time.perf_counter() - t0
        med, low = _cpu_ms_per_call(vg, th, calls)
        loop = _loop_ms_per_call(logp, th, calls)
        b_med, b_low = _cpu_ms_per_call(jax.jit(jax.value_and_grad(blood)), th, calls)
        b_loop = _loop_ms_per_call(blood, th, calls)
        held = {k: jnp.asarray(v) for k, v in model.blood(th).items()}
        model.blood = lambda t, held=held: {k: v * (1.0 + 0.0 * t["beta"]) for k, v in held.items()}
        r_med, r_low = _cpu_ms_per_call(jax.jit(jax.value_and_grad(logp)), th, calls)
        r_loop = _loop_ms_per_call(logp, th, calls)
        out[h] = {"logp_grad_ms": med, "logp_grad_min_ms": low, "logp_grad_loop_ms": loop, "blood_grad_ms": b_med,
                  "blood_grad_min_ms": b_low, "blood_grad_loop_ms": b_loop, "rest_grad_ms": r_med,
                  "rest_grad_min_ms": r_low, "rest_grad_loop_ms": r_loop, "compile_s": compile_s}
    return out


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - platform without getloadavg
        return "unknown"


def _run_tree(tree: Path | None, hypotheses, calls: int) -> dict:
    """``measure`` in a fresh single-threaded process, on ``tree``'s nadfit (None: this one)."""
    env = dict(os.environ, XLA_FLAGS=XLA_SINGLE_THREAD, JAX_ENABLE_COMPILATION_CACHE="false")
    with tempfile.TemporaryDirectory() as shim:
        if tree is not None:  # a nadfit package made of the tree's folders, first on the path
            pkg = Path(shim) / "nadfit"
            pkg.mkdir()
            for name in PACKAGES:
                (pkg / name).symlink_to(Path(tree).resolve() / name)
            env["PYTHONPATH"] = shim + os.pathsep + env.get("PYTHONPATH", "")
        load_before = _load()
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), ",".join(hypotheses), str(calls)],
                              env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"logp cost measurement failed on {tree or 'this tree'}: {tail}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"load_before": load_before, "load_after": _load(), "result": res}


def compare(reference_tree: Path | None = None, hypotheses=HYPOTHESES, calls: int = 200, rounds: int = 2,
            log=None) -> dict:
    """This tree's cost and, with ``reference_tree``, the reference's, alternating ``rounds`` times;
    per side and hypothesis the smallest median over rounds (the least disturbed one)."""
    log = log or (lambda msg: None)
    if reference_tree is not None:
        missing = [n for n in PACKAGES if not (Path(reference_tree) / n).is_dir()]
        if missing:
            from nadfit.datasets.errors import UserError

            raise UserError(f"{reference_tree}: not a nadfit source tree (no {', '.join(missing)} folder)",
                            field="reference-tree")
    sides = {"new": None} | ({"reference": Path(reference_tree)} if reference_tree is not None else {})
    runs: dict[str, list] = {k: [] for k in sides}
    for r in range(rounds):
        for side, tree in sides.items():
            log(f"bench logp cost: round {r + 1}/{rounds}, {side} ...")
            runs[side].append(_run_tree(tree, hypotheses, calls))
    best = {side: {h: {key: min(run["result"][h][key] for run in rs) for key in rs[0]["result"][h]}
                   for h in hypotheses} for side, rs in runs.items()}
    out = {"hypotheses": list(hypotheses), "calls": calls, "rounds": rounds, "xla_flags": XLA_SINGLE_THREAD,
           "reference_tree": str(reference_tree) if reference_tree is not None else None,
           "loads": {side: [(run["load_before"], run["load_after"]) for run in rs] for side, rs in runs.items()},
           "best": best, "runs": {side: [run["result"] for run in rs] for side, rs in runs.items()}}
    if reference_tree is not None:
        out["ratio"] = {h: {key: best["new"][h][key] / best["reference"][h][key] for key in RATIO_KEYS}
                        for h in hypotheses}
    return out


def format_cost(res: dict) -> str:
    ref = res["reference_tree"] is not None
    parts = (("logp", "logp_grad"), ("blood", "blood_grad"), ("rest", "rest_grad"))
    head = ["hypothesis"] + [f"{name}+grad ms (median / min / in XLA loop)" for name, _ in parts]
    if ref:
        head += [f"reference {name}" for name, _ in parts] + [f"ratio {name}" for name, _ in parts]
    lines = [f"nadfit bench --logp-cost: CPU ms per call from Python (median / min), and wall ms per "
             f"evaluation inside one XLA loop (no dispatch: what the sampler pays), single-threaded XLA, "
             f"{res['calls']} calls per measurement, best of {res['rounds']} rounds (blood: the blood course "
             "alone; rest: the log-likelihood with the blood course held)"
             + (f"; reference tree {res['reference_tree']}" if ref else ""),
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(d, key):
        return f"{d[key + '_ms']:.2f} / {d[key + '_min_ms']:.2f} / {d[key + '_loop_ms']:.2f}"

    for h in res["hypotheses"]:
        row = [h] + [cell(res["best"]["new"][h], key) for _, key in parts]
        if ref:
            row += [cell(res["best"]["reference"][h], key) for _, key in parts]
            row += [cell(res["ratio"][h], key) for _, key in parts]
        lines.append("| " + " | ".join(row) + " |")
    lines.append("load average (1/5/15 min) before -> after each run: " + "; ".join(
        f"{side} " + ", ".join(f"{a} -> {b}" for a, b in loads) for side, loads in res["loads"].items()))
    return "\n".join(lines)


if __name__ == "__main__":  # python logp_cost.py HYP[,HYP] CALLS  (one measurement, JSON on stdout)
    print(json.dumps(measure(sys.argv[1].split(","), int(sys.argv[2]))))
