"""Where the main job spends its time: summarise a py-spy profile of ``nadfit run-all`` by phase.

Record (py-spy is in the ``profile`` extra; the main thread sleeps while nutpie samples, so
sampling shows up as the wall time the main thread was idle):

    .venv/bin/py-spy record -r 10 -f raw -o run-all.raw -- .venv/bin/nadfit run-all --out runs/p
    .venv/bin/python -m nadfit.fitting.benchmark.profile_summary run-all.raw --wall 925

``--wall`` is the command's wall time in seconds (printed by run-all); without it the idle
share cannot be split off and only the active phases are listed.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

#: phases in priority order: a sample is charged to the first phase found on its stack
PHASES = (
    ("bridge_log_ml", "bridge sampling"),
    ("smc_log_ml", "SMC marginal likelihood"),
    ("power_scaling", "power-scaling sensitivity"),
    ("render_run", "run reports (HTML)"),
    ("render_comparison", "comparison report (HTML)"),
    ("build_comparison", "LOO, stacking, LOSO, attribution"),
    ("compile_pymc_model", "nutpie model compilation"),
    ("sample_posterior", "NUTS (main thread: start-up, polling)"),
    ("sample_prior_predictive", "prior draws for the report"),
    ("_posterior_predictive", "posterior predictive"),
    ("preflight", "preflight check (first JAX compile)"),
    ("build_pymc_model", "PyMC model assembly"),
    ("run_fit", "fit bookkeeping (curves, netCDF, summary)"),
    ("run_compare", "compare bookkeeping"),
)


def summarise(raw: Path, rate_hz: float = 10.0, wall_s: float | None = None) -> list[tuple[str, float]]:
    """(phase, seconds) rows: main-thread samples by phase, plus the idle remainder when
    ``wall_s`` is given (= time the main thread waited for the sampler threads)."""
    seconds: collections.Counter = collections.Counter()
    worker = 0.0
    for line in Path(raw).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        names = [f.split(" (")[0] for f in stack.split(";")]
        n = int(count) / rate_hz
        if "run_all_command" not in names:
            worker += n
            continue
        phase = next((label for key, label in PHASES if key in names), "other")
        seconds[phase] += n
    rows = sorted(seconds.items(), key=lambda kv: -kv[1])
    if wall_s is not None:
        idle = wall_s - sum(seconds.values())
        rows.insert(0, ("NUTS sampling + start-up (main thread idle or outside run-all)", idle))
    rows.append(("(sampler threads, CPU-seconds, for reference)", worker))
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("raw", type=Path)
    ap.add_argument("--rate", type=float, default=10.0, help="py-spy sampling rate (-r)")
    ap.add_argument("--wall", type=float, default=None, help="wall time of the profiled command (s)")
    a = ap.parse_args(argv)
    rows = summarise(a.raw, a.rate, a.wall)
    total = a.wall or sum(s for p, s in rows if not p.startswith("("))
    print("| phase | seconds | share |\n|---|---|---|")
    for phase, s in rows:
        share = "" if phase.startswith("(") else f"{100 * s / total:.0f} %"
        print(f"| {phase} | {s:.0f} | {share} |")


if __name__ == "__main__":
    main()
