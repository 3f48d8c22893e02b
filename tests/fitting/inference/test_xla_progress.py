"""numpyro's in-loop progress reaches nadfit's counter (inference.xla_progress).

This test fails if a numpyro release stops making its per-chain bars through
``numpyro.util.tqdm_auto`` (the counter would stay at zero): the fit would then report its
progress only at the end. It runs in a subprocess with two host devices, since numpyro counts
in-loop only with one chain per device, and the device count is fixed when JAX starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from nadfit.fitting.inference.xla_progress import DrawCounter

SCRIPT = r"""
import json, numpy as np, pymc as pm
from nadfit.fitting.inference.xla_progress import count_draws
import numpyro.util as nutil
saved = nutil.tqdm_auto
with pm.Model() as m:
    pm.Normal("x", 0.0, 1.0)
with count_draws(2) as counter:
    with m:
        pm.sample(draws=30, tune=20, chains=2, nuts_sampler="numpyro", random_seed=1, progressbar=True,
                  nuts={"chain_method": "parallel"}, compute_convergence_checks=False)
print(json.dumps({"snapshot": counter.snapshot(), "restored": nutil.tqdm_auto is saved}))
"""


def test_numpyro_parallel_chains_count_every_iteration_into_the_counter():
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_XDIST_WORKER", "XLA_FLAGS")}
    env["JAX_NUM_CPU_DEVICES"] = "2"
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["snapshot"] == [2 * (30 + 20), 2]
    assert res["restored"]
    assert "Running chain" not in out.stderr  # numpyro printed no bar of its own


def test_the_counter_keeps_chains_apart_and_ignores_unknown_chains():
    c = DrawCounter(3)
    bar = c.bar_class()
    b0, b2 = bar(range(10), position=0), bar(range(10), position=2)
    b0.update(0)  # numpyro's first call marks a chain as started
    assert c.snapshot() == (0, 1)
    b0.update(4)
    b2.update(5)
    bar(range(10), position=7).update(3)
    b0.set_description("Running chain 0", refresh=False)
    b0.close()
    assert c.snapshot() == (9, 2)
