"""nadfit bench: the ODE formulation matches the production path (default suite); the quick JSON-shape
check through the CLI and the full benchmark run with the slow tests."""

from __future__ import annotations

import numpy as np
import pytest


def test_ode_formulation_matches_production_at_truth():
    from nadfit.fitting.benchmark.bench import bench_problem, true_theta
    from nadfit.fitting.benchmark.ode_jax import solve_numpy

    problem, predict = bench_problem()
    th = true_theta()
    ys = solve_numpy(problem.rhs, problem.times, problem.y0, th, t0=problem.t0)
    b, n_r = predict(th)
    rows_h = [int(np.argmin(np.abs(problem.times - d))) for d in (0, 7, 14, 30, 45, 60)]
    ode_b = ys[rows_h][:, [2, 5, 8, 11]]
    # k_t = 24/day vs the quasi-steady limit: agreement within 1 % on b
    np.testing.assert_allclose(ode_b, np.asarray(b), rtol=1e-2)
    rows_r = [int(np.argmin(np.abs(problem.times - h / 24))) for h in (2, 4, 6, 8, 12, 24, 36, 48)]
    # rodent tissue NAD+ doubles within hours: the k_t = 24/day lag is 14 % at 2 h (1.83 vs
    # 2.12), < 5 % from 4 h on, < 1 % from 12 h: the ODE paths fit a slightly different model there
    np.testing.assert_allclose(ys[rows_r[1:], 12], np.asarray(n_r)[1:], rtol=0.05)
    assert abs(ys[rows_r[0], 12] / float(n_r[0]) - 1) < 0.2


def test_numpyro_gradient_matches_finite_differences():
    """The numpyro + diffrax log density of the bench problem has a correct gradient (with the
    explicit Tsit5 solver it was ~1e171 where finite differences give -0.002)."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import initialize_model

    from nadfit.fitting.benchmark.bench import SIGMA_TRUE, bench_problem, true_theta
    from nadfit.fitting.benchmark.paths import numpyro_model_fn

    problem, _ = bench_problem()
    init = initialize_model(jax.random.PRNGKey(0), numpyro_model_fn(problem))
    names = list(problem.param_names) + ["sigma"]
    z = dict(zip(names, np.log(np.r_[true_theta(), SIGMA_TRUE]), strict=True))
    grad = jax.grad(init.potential_fn)({n: jnp.asarray(v) for n, v in z.items()})
    eps = 1e-5
    for n in names:
        up = float(init.potential_fn({k: jnp.asarray(v + (eps if k == n else 0.0)) for k, v in z.items()}))
        dn = float(init.potential_fn({k: jnp.asarray(v - (eps if k == n else 0.0)) for k, v in z.items()}))
        fd = (up - dn) / (2 * eps)
        assert abs(float(grad[n]) - fd) <= 1e-3 * max(1.0, abs(fd)), (n, float(grad[n]), fd)


def test_stuck_chains_and_jittered_init():
    from nadfit.fitting.benchmark.bench import bench_problem
    from nadfit.fitting.benchmark.paths import _capped_summary, jittered_init, stuck_chains

    rng = np.random.default_rng(0)
    arr = rng.normal(size=(3, 50, 2))
    arr[1] = arr[1, 0]  # chain 1 never moves
    assert stuck_chains(arr) == 1 and stuck_chains(arr[[0, 2]]) == 0
    # a single stuck chain: ArviZ would report ESS = n; the summary reports no ESS instead
    one = _capped_summary([list(arr[1])], ["a", "b"], 1.0, 2.0, 100, 100, False)
    assert one["stuck_chains"] == 1 and one["min_ess"] is None
    # stopped run: two complete chains (500 draws), a partial one, one not started -> ESS from the
    # complete chains; ESS/s extrapolates ESS per draw to the 4 x 500 planned draws
    chains = [list(rng.normal(size=(500, 2))), list(rng.normal(size=(500, 2))), list(rng.normal(size=(246, 2))), []]
    cap = _capped_summary(chains, ["a", "b"], 10.0, 100.0, 2746, 4000, True, draws_per_chain=500, chains=4)
    assert cap["ess_draws_used"] == 1000 and cap["draws_done"] == 1246
    assert cap["total_s"] == pytest.approx(10.0 + 100.0 / 2746 * 4000)
    assert cap["ess_per_s"] == pytest.approx(cap["min_ess"] / 1000 * 2000 / cap["total_s"])
    # nothing complete: truncated to the shortest started chain
    part = _capped_summary(chains[2:] + [list(rng.normal(size=(100, 2)))], ["a", "b"], 1.0, 1.0, 10, 40, True,
                           draws_per_chain=500, chains=4)
    assert part["ess_draws_used"] == 200
    problem, _ = bench_problem()
    z0 = jittered_init(problem, 4, 1)
    assert set(z0) == set(problem.param_names) | {"sigma"}
    for n, m in zip(problem.param_names, problem.prior_log_mu, strict=True):
        assert z0[n].shape == (4,) and np.all(np.abs(z0[n] - m) <= 1.0) and np.ptp(z0[n]) > 0


KEYS = {"date", "machine", "settings", "paths", "ratio_ess_per_s_vs_pm_ode",
        "ratio_ess_per_s_vs_numpyro_diffrax", "ratio_basis", "ratio_floor", "scaling", "simulate"}
PATH_KEYS = {"path", "compile_s", "sample_s", "total_s", "min_ess_bulk", "ess_per_s", "max_rhat",
             "divergences", "peak_mem_mb", "draws_done", "extrapolated"}


def _check_shape(res: dict, quick: bool) -> None:
    assert KEYS <= set(res)
    assert set(res["paths"]) == {"production", "pm_ode", "numpyro_diffrax"}
    for name, p in res["paths"].items():
        assert PATH_KEYS <= set(p), name
        assert p["path"] == name
        assert p["compile_s"] > 0 and p["sample_s"] > 0 and p["total_s"] >= p["sample_s"]
        assert isinstance(p["extrapolated"], bool)
        assert p["cores_used"] >= 1
    assert res["paths"]["numpyro_diffrax"]["chain_method"] == "sequential"
    assert {"cpus", "python", "platform"} <= set(res["machine"])
    assert res["settings"]["quick"] is quick
    assert res["settings"]["compilation_cache"].startswith("off")
    assert res["settings"]["target_accept"] == 0.8
    for key in ("ratio_ess_per_s_vs_pm_ode", "ratio_ess_per_s_vs_numpyro_diffrax"):
        assert res[key] is None or res[key] > 0
    for name in ("pm_ode", "numpyro_diffrax"):
        basis = res["ratio_basis"][name]
        assert basis.split(":")[0].split(" ")[0] in ("measured", "estimated", "unavailable")
        assert (res["ratio_floor"][name] is not None) == basis.startswith("estimated")
    sizes = [(r["studies"], r["days"]) for r in res["scaling"]]
    assert sizes == ([(1, 60), (4, 60)] if quick else [(1, 60), (4, 60), (16, 60), (1, 30), (1, 120)])
    assert all(r["eval_ms"] > 0 and r["arms"] == 4 * r["studies"] for r in res["scaling"])


def test_ratio_measured_estimated_unavailable():
    from nadfit.fitting.benchmark.bench import ratio_vs

    prod = {"path": "production", "ess_per_s": 20.0, "min_ess_bulk": 1000.0, "draws_done": 2000,
            "total_s": 50.0, "extrapolated": False}
    done = {"path": "pm_ode", "ess_per_s": 0.5, "min_ess_bulk": 900.0, "total_s": 1800.0, "extrapolated": True}
    r = ratio_vs(prod, done, 2000)
    assert r["ratio"] == pytest.approx(40.0) and r["basis"].startswith("measured") and r["floor"] is None
    # no post-warm-up draw: ESS per draw (0.5) borrowed from production, time per iteration measured
    capped = {"path": "pm_ode", "ess_per_s": None, "min_ess_bulk": None, "total_s": 4000.0, "extrapolated": True}
    r = ratio_vs(prod, capped, 2000)
    assert r["ratio"] == pytest.approx(20.0 / (0.5 * 2000 / 4000.0))  # = 80
    assert r["floor"] == pytest.approx(20.0 / (2000 / 4000.0)) and r["floor"] < r["ratio"]
    assert r["basis"].startswith("estimated") and "0.500" in r["basis"]
    assert ratio_vs({**prod, "ess_per_s": None}, done, 2000)["ratio"] is None


# quick mode is a JSON-shape check through the CLI, not a benchmark; it took 157 s of the default
# suite (numpyro's compile and its 60 s cap), so it runs with the slow tests
@pytest.mark.slow
def test_quick_bench_cli_json_shape(tmp_path, capsys):
    import json

    from nadfit.fitting.cli import main

    out = tmp_path / "bench.json"
    rc = main(["bench", "--quick", "--json", "--out", str(out)])
    printed = json.loads(capsys.readouterr().out)
    assert rc in (0, None)
    written = json.loads(out.read_text())
    assert printed == written
    _check_shape(written, quick=True)
    assert written["settings"]["max_tree_depth"] == 4
    assert written["settings"]["pm_ode_cap_s"] == 5.0 and written["settings"]["numpyro_cap_s"] == 60.0
    # pm.ode (~2 s per iteration here) is stopped at its 5 s cap and extrapolated, and says so;
    # a path that finished has all its draws and says so too
    for name in ("pm_ode", "numpyro_diffrax"):
        p = written["paths"][name]
        if p["extrapolated"]:
            assert "cap" in p["note"] and p["iterations_done"] < p["iterations_planned"]
        else:
            assert p["draws_done"] == 20 and p["note"] == "ran to completion"
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # no temporary leftovers


@pytest.mark.slow
def test_full_bench():
    from nadfit.fitting.benchmark.bench import run_bench

    res = run_bench(quick=False)
    _check_shape(res, quick=False)
    assert res["paths"]["production"]["max_rhat"] < 1.05
    # target_accept 0.8 on every path: a few divergences (5 of 2000 on 2026-11-23) are possible
    assert res["paths"]["production"]["divergences"] <= 0.01 * res["paths"]["production"]["draws_done"]
    assert res["settings"]["target_accept"] == 0.8
