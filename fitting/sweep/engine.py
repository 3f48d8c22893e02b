"""Scale-out: run many independent fits (sweeps, SBC, leave-one-study-out) on Dask distributed.

Why Dask distributed: it is pure Python and pip-installable (already a dependency, no extra
runtime or daemon); ``LocalCluster`` embeds a scheduler and worker processes in the calling
process, so a laptop run needs no setup, while ``Client("tcp://scheduler:8786")`` sends the same
sweep to a real cluster (SSH, Kubernetes, HPC job queues via dask-jobqueue); futures come with
``retries``, and a worker process that dies mid-task is detected by the scheduler, restarted by
its nanny and its task rescheduled on another worker. Ray would bring the same features with a
much heavier runtime (its own object store and raylet daemons, large wheels) for no gain here:
our tasks are coarse (seconds to minutes each) and exchange only small JSON results.

Spec file (TOML, or YAML with the same keys)::

    hypotheses = ["direct", "via-nr", "mixed"]   # one full fit per hypothesis ...
    prior_widen = [1, 2]                         # ... times each prior widening
    loso = {hypothesis = "mixed"}                # one fit per left-out study
    sbc = {hypothesis = "mixed", n_sims = 100, rank_draws = 99}   # SBC replicates

    [defaults]                  # optional (TOML: after the top-level keys); applies to every fit
    draws = 500
    tune = 500
    chains = 2
    seed = 20261122

    [[fits]]                    # explicit fits (keys of FitConfig + optional id)
    id = "mixed-no-yi2022"
    hypothesis = "mixed"
    exclude = ["yi2022"]

    [[tasks]]                   # any registered task kind (see TASK_KINDS), e.g. the engine's
    kind = "echo"               # smoke-test kind
    id = "hello"
    sleep = 1.0

Each task is a pure function of its parameters (seeds are fixed in the spec or derived from the
task index) and writes ``OUT/<task_id>/`` atomically (``COMPLETE`` last): full fits through
``run_fit`` (a normal run folder), SBC replicates and other kinds as a small ``result.json``.
``OUT/sweep.json`` (the manifest) is rewritten atomically after each completion. On a re-run,
tasks whose folder is complete are skipped (resume). Tasks are submitted with ``retries=2``;
workers are single-threaded processes and every task pins JAX to the CPU with one intra-op
thread and nutpie to one core (chains one after another), so N workers use about N cores.
"""

from __future__ import annotations

import functools
import importlib
import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nadfit.datasets.errors import UserError
from nadfit.fitting.storage.outputs import atomic_dir, claim_output_dir, write_json

SWEEP_SCHEMA = "nadfit.sweep/1"
RETRIES = 2

#: environment of every task (and LocalCluster worker): one core per worker
THREAD_ENV = {
    "JAX_PLATFORMS": "cpu",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "RAYON_NUM_THREADS": "1",
    "NADFIT_CORES": "1",
}

#: task kind -> "module:function"; the function takes (params: dict, out: Path) and returns a
#: JSON-able dict; it must write ``out`` atomically (``storage.outputs.atomic_dir``, kind "task",
#: or "run" for a run folder) with ``COMPLETE`` last
TASK_KINDS: dict[str, str] = {
    "fit": "nadfit.fitting.sweep.engine:task_fit",
    "sbc": "nadfit.fitting.calibration.sbc:task_sbc",
    "study_refit": "nadfit.fitting.comparison.refits:task_study_refit",
    "echo": "nadfit.fitting.sweep.engine:task_echo",
}
#: spec sections owned by other modules (named, not imported: the engine knows no task's science).
#: ``expand(section, defaults, file, spec) -> (tasks, group)`` validates the section and returns
#: its tasks and a JSON-able group description; after the run ``aggregate(out_dir, groups,
#: manifest) -> dict`` summarises the groups into the manifest entry of that section.
SECTIONS: dict[str, tuple[str, str]] = {
    "sbc": ("nadfit.fitting.calibration.sbc:expand_spec_section", "nadfit.fitting.calibration.sbc:aggregate_sweep"),
}

FIT_KEYS = {"id", "hypothesis", "evidence", "exclude", "draws", "tune", "chains", "seed", "widen_priors",
            "target_accept", "accept_failed_gates", "prior_draws", "observation"}
DEFAULT_KEYS = {"draws", "tune", "chains", "seed", "widen_priors", "target_accept", "prior_draws"}
TOP_KEYS = {"defaults", "fits", "tasks", "hypotheses", "prior_widen", "loso", "sbc"}


def register_task_kind(kind: str, target: str) -> None:
    """Make a task kind available: ``target`` is "module:function" importable on the workers."""
    if ":" not in target:
        raise ValueError("target must be 'module:function'")
    TASK_KINDS[kind] = target


@dataclass
class Task:
    id: str
    kind: str
    params: dict
    target: str = ""

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "params": self.params}


@dataclass
class SweepSpec:
    tasks: list[Task] = field(default_factory=list)
    source: str = "<memory>"
    groups: dict = field(default_factory=dict)  # section (e.g. "sbc") -> its groups of task ids


# ---------------------------------------------------------------------------------------------
# built-in task kinds (run on workers)
# ---------------------------------------------------------------------------------------------
def task_fit(params: dict, out: Path) -> dict:
    """A full fit (``run_fit``) into ``out``; nutpie limited to ``NADFIT_CORES`` cores."""
    from nadfit.fitting.inference.config import FitConfig
    from nadfit.fitting.inference.fit import run_fit, worker_cores

    cfg = FitConfig(**{k: v for k, v in params.items() if k != "id"})
    s = run_fit(cfg, out, cores=worker_cores())
    return {"status": s["status"], "wall_time_s": s["wall_time_s"], "divergences": s["divergences"]}


def task_echo(params: dict, out: Path) -> dict:
    """Smoke-test kind for the engine: optionally records each execution in ``log_dir``, kills its
    own worker process once (when ``crash_once`` names a marker file that does not exist yet),
    sleeps ``sleep`` seconds and writes ``result.json`` with ``value``."""
    import signal

    log_dir = params.get("log_dir")
    if log_dir:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(log_dir) / f"{out.name}.log", "a") as fh:
            fh.write(f"{os.getpid()}\n")
    marker = params.get("crash_once")
    if marker and not Path(marker).exists():
        Path(marker).write_text(str(os.getpid()))
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(float(params.get("sleep", 0.0)))
    res = {"value": params.get("value"), "pid": os.getpid(), "jax_platforms": os.environ.get("JAX_PLATFORMS")}
    with atomic_dir(out, "task") as tmp:
        write_json(tmp / "result.json", res)
    return res


def resolve(target: str) -> Callable:
    """The function named by ``"module:function"``."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def release_compiled_programs() -> None:
    """After a task: drop JAX's in-memory caches of traced and compiled programs (the persistent
    compilation cache on disk is kept), collect garbage and give freed heap pages back to the
    system (glibc ``malloc_trim``). A worker runs many tasks, each compiling new programs (every
    simulated evidence set is one). Session 19, one process running SBC tasks (via-nr, 2 chains
    x (60 + 60)) one after another, resident memory after each task: 1.86, 2.82 GB with nothing
    released; 1.84, 2.63, 3.36 GB with the caches cleared; 0.59, 0.62, 0.63 GB with the heap
    trimmed too. The reduced calibration test's two workers held 7.2 and 8.7 GB after six tasks
    each, so a full calibration (hundreds of tasks per worker) would have run out of memory."""
    import gc
    import sys

    if "jax" in sys.modules:
        sys.modules["jax"].clear_caches()
    gc.collect()
    try:  # hand freed heap pages back to the system (glibc keeps them otherwise)
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def execute_task(kind: str, target: str, params: dict, out: str) -> dict:
    """Run one task on a worker (module-level so it pickles by reference); the task's compiled
    programs are released when it ends (:func:`release_compiled_programs`)."""
    os.environ.update(THREAD_ENV)
    fn: Callable = resolve(target)
    t0 = time.time()
    try:
        result = fn(dict(params), Path(out))
    finally:
        release_compiled_programs()
    if not (Path(out) / "COMPLETE").exists():
        raise RuntimeError(f"task kind {kind!r} did not write a complete result folder {out}")
    return {"result": result, "task_wall_s": round(time.time() - t0, 3), "host": socket.gethostname(),
            "pid": os.getpid()}


# ---------------------------------------------------------------------------------------------
# spec
# ---------------------------------------------------------------------------------------------
def positive_int(value, where: str, file: str, key: str, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise UserError(f"{where} must be a whole number >= {minimum}, got {value!r}", file=file, field=key)
    return value


def check_keys(d, allowed: set, file: str, where: str) -> None:
    if not isinstance(d, dict):
        raise UserError(f"{where} must be a table/mapping", file=file, field=where)
    for k in d:
        if k not in allowed:
            raise UserError(f"unknown key {k!r} in {where}; known: {', '.join(sorted(allowed))}",
                            file=file, field=f"{where}.{k}")


def _fit_task(entry: dict, defaults: dict, file: str, where: str, task_id: str) -> Task:
    from nadfit.fitting.inference.config import FitConfig

    params = {**defaults, **{k: v for k, v in entry.items() if k != "id"}}
    for key in ("evidence", "exclude"):
        v = params.get(key, [])
        if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            raise UserError(f"{key} must be a list of study or evidence ids", file=file, field=f"{where}.{key}")
    try:
        FitConfig(**params).validate()
        if params.get("evidence") or params.get("exclude"):
            from nadfit.fitting.inference.config import select_evidence

            select_evidence(_evidence_table(), params.get("evidence", []), params.get("exclude", []))
    except UserError as err:
        raise UserError(err.message, file=file, field=f"{where}.{err.field}" if err.field else where) from None
    except TypeError as exc:
        raise UserError(f"bad fit entry ({exc})", file=file, field=where) from None
    return Task(task_id, "fit", params)


@functools.lru_cache(maxsize=1)
def _evidence_table():
    from nadfit.datasets import load_evidence

    return load_evidence()


def _safe_id(s: str) -> str:
    return "".join(c if (c.isalnum() or c in "-_.") else "_" for c in str(s))


def _study_ids() -> list[str]:
    from nadfit.models.model import load_evidence_map

    ev = _evidence_table()
    scored = set(load_evidence_map()["likelihood"])
    return sorted(set(ev.loc[ev["evidence_id"].isin(scored), "study_id"].astype(str)))


def parse_spec(data: dict, file: str = "<spec>") -> SweepSpec:
    """Validate a spec mapping and expand its generators into tasks."""
    from nadfit.models.hypotheses import HYPOTHESES

    check_keys(data, TOP_KEYS, file, "spec")
    defaults = data.get("defaults", {}) or {}
    check_keys(defaults, DEFAULT_KEYS, file, "defaults")
    tasks: list[Task] = []
    spec = SweepSpec(source=file)

    def hyp(name, key):
        if name not in HYPOTHESES:
            raise UserError(f"unknown hypothesis {name!r}; choose one of {', '.join(HYPOTHESES)}", file=file, field=key)
        return name

    widen = data.get("prior_widen")
    if widen is not None:
        if not isinstance(widen, list) or not widen or not all(
                isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w > 0 for w in widen):
            raise UserError("prior_widen must be a non-empty list of positive numbers", file=file, field="prior_widen")
    hyps = data.get("hypotheses")
    if hyps is not None:
        if not isinstance(hyps, list) or not hyps:
            raise UserError("hypotheses must be a non-empty list", file=file, field="hypotheses")
        hyps = [hyp(h, "hypotheses") for h in hyps]
    elif widen is not None:
        hyps = ["mixed"]
    if hyps:
        for h in hyps:
            for w in (widen or [1.0]):
                tid = f"fit-{h}" + (f"-widen{w:g}" if widen else "")
                tasks.append(_fit_task({"hypothesis": h, "widen_priors": float(w)}, defaults, file, "hypotheses", tid))
    loso = data.get("loso")
    if loso is not None:
        check_keys(loso, {"hypothesis"}, file, "loso")
        h = hyp(loso.get("hypothesis", "mixed"), "loso.hypothesis")
        for study in _study_ids():
            tasks.append(_fit_task({"hypothesis": h, "exclude": [study]}, defaults, file, "loso",
                                   f"loso-{h}-{_safe_id(study)}"))
    for section, (expand, _) in SECTIONS.items():
        if data.get(section) is not None:
            group_tasks, group = resolve(expand)(data[section], defaults, file, spec)
            tasks += group_tasks
            spec.groups.setdefault(section, {}).update(group)
    fits = data.get("fits", [])
    if not isinstance(fits, list):
        raise UserError("fits must be a list of tables ([[fits]])", file=file, field="fits")
    for i, entry in enumerate(fits):
        where = f"fits[{i}]"
        check_keys(entry, FIT_KEYS, file, where)
        if "hypothesis" not in entry:
            raise UserError("fit entry needs a hypothesis", file=file, field=f"{where}.hypothesis")
        tid = _safe_id(entry.get("id") or f"fit-{i:03d}-{entry['hypothesis']}")
        tasks.append(_fit_task(entry, defaults, file, where, tid))
    extra = data.get("tasks", [])
    if not isinstance(extra, list):
        raise UserError("tasks must be a list of tables ([[tasks]])", file=file, field="tasks")
    for i, entry in enumerate(extra):
        where = f"tasks[{i}]"
        if not isinstance(entry, dict):
            raise UserError("task entry must be a table", file=file, field=where)
        kind = entry.get("kind")
        if kind not in TASK_KINDS:
            raise UserError(f"unknown task kind {kind!r}; known: {', '.join(sorted(TASK_KINDS))}",
                            file=file, field=f"{where}.kind")
        tid = _safe_id(entry.get("id") or f"{kind}-{i:03d}")
        params = {k: v for k, v in entry.items() if k not in ("kind", "id")}
        tasks.append(Task(tid, kind, params))
    if not tasks:
        raise UserError("spec defines no task (fits, tasks, hypotheses, prior_widen, loso or sbc)", file=file)
    seen = set()
    for t in tasks:
        if t.id in seen:
            raise UserError(f"duplicate task id {t.id!r}", file=file, field="id")
        seen.add(t.id)
        t.target = TASK_KINDS[t.kind]
    spec.tasks = tasks
    return spec


def load_spec(path: Path) -> SweepSpec:
    from nadfit.fitting.storage.files import read_mapping_file

    path = Path(path)
    data = read_mapping_file(path, "sweep spec", "sweep spec must be a mapping")
    return parse_spec(data, str(path))


# ---------------------------------------------------------------------------------------------
# engine
# ---------------------------------------------------------------------------------------------
def _write_manifest(out_dir: Path, manifest: dict) -> None:
    tmp = out_dir / f".sweep.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, out_dir / "sweep.json")


def is_complete(folder: Path) -> bool:
    return (folder / "COMPLETE").exists()


def _client(workers: int, address: str | None):
    from distributed import Client, LocalCluster

    if address:
        try:
            return Client(address, timeout="20s"), None
        except OSError as exc:
            raise UserError(f"cannot connect to the Dask scheduler ({exc})", field="address") from None
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                           env=dict(THREAD_ENV), silence_logs=40)
    return Client(cluster), cluster


def run_sweep(spec: SweepSpec | Path | str, out_dir: Path, workers: int = 2, address: str | None = None,
              on_done: Callable[[dict, int, int], None] | None = None, aggregate: bool = True,
              kind: str = "sweep") -> dict:
    """Run every task of ``spec`` (skipping complete ones), streaming results to ``out_dir``.

    ``out_dir`` follows the output contract (``storage.outputs``): new, empty, or an earlier
    output of the same ``kind`` ("sweep", or "sbc" for ``nadfit sbc``), which is resumed.
    ``on_done(entry, n_done, n_total)`` is called in the client after each finished task.
    Returns the final manifest (also in ``out_dir/sweep.json``)."""
    from distributed import as_completed

    if not isinstance(spec, SweepSpec):
        spec = load_spec(Path(spec))
    if not (isinstance(workers, int) and workers >= 1):
        raise UserError(f"workers must be a whole number >= 1, got {workers!r}", field="workers")
    for t in spec.tasks:
        if not t.target:
            if t.kind not in TASK_KINDS:
                raise UserError(f"unknown task kind {t.kind!r}; known: {', '.join(sorted(TASK_KINDS))}", field="kind")
            t.target = TASK_KINDS[t.kind]
    out_dir = Path(out_dir)
    claim_output_dir(out_dir, kind)  # refused before any worker starts; marked as ours (resumable)
    t0 = time.time()
    entries = {t.id: {**t.to_dict(), "status": "pending"} for t in spec.tasks}
    todo = []
    for t in spec.tasks:
        if is_complete(out_dir / t.id):
            entries[t.id]["status"] = "skipped"  # complete from an earlier run
        else:
            todo.append(t)
    manifest = {"schema": SWEEP_SCHEMA, "spec": spec.source, "n_tasks": len(spec.tasks), "n_skipped":
                len(spec.tasks) - len(todo), "n_done": 0, "n_failed": 0, "workers": workers, "address": address,
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "finished": False, "wall_time_s": 0.0,
                "tasks": entries}
    _write_manifest(out_dir, manifest)
    total = len(spec.tasks)
    finished = manifest["n_skipped"]
    if todo:
        client, cluster = _client(workers, address)
        try:
            futures = {}
            for t in todo:
                fut = client.submit(execute_task, t.kind, t.target, t.params, str(out_dir / t.id),
                                    key=f"nadfit-{t.id}-{os.getpid()}-{int(t0 * 1000)}", retries=RETRIES,
                                    pure=False)
                futures[fut] = t
            for fut in as_completed(list(futures)):
                t = futures[fut]
                e = entries[t.id]
                try:
                    res = fut.result()
                    e.update(status="done", result=res["result"], task_wall_s=res["task_wall_s"], pid=res["pid"],
                             host=res["host"])
                    manifest["n_done"] += 1
                except Exception as exc:  # the task failed after its retries (or its worker kept dying)
                    e.update(status="failed", error=f"{exc.__class__.__name__}: {str(exc)[:400]}")
                    manifest["n_failed"] += 1
                finished += 1
                e["finished_s"] = round(time.time() - t0, 3)
                manifest["wall_time_s"] = round(time.time() - t0, 3)
                _write_manifest(out_dir, manifest)
                if on_done:
                    on_done(e, finished, total)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    manifest["finished"] = True
    manifest["wall_time_s"] = round(time.time() - t0, 3)
    if aggregate:
        for section, groups in spec.groups.items():
            manifest[section] = resolve(SECTIONS[section][1])(out_dir, groups, manifest)
    _write_manifest(out_dir, manifest)
    return manifest
