"""External validation against posteriordb's one_comp_mm_elim_abs posterior, and bench paths.

Fast tests: the diffrax ODE solve agrees with scipy LSODA at the reference posterior means and the
PyMC log density is finite there; the three bench paths run at tiny sizes.
Slow test (``-m slow``): the full reference posterior check (4 chains x 1000 draws with nutpie;
~20 s on a 2-core machine).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from nadfit.fitting.benchmark.reference import ReferenceNotFound, load_reference


@pytest.fixture(scope="module")
def ref():
    try:
        return load_reference()
    except ReferenceNotFound as exc:
        pytest.skip(str(exc))


def test_load_reference_missing_dir_is_clear(tmp_path):
    with pytest.raises(ReferenceNotFound, match="NADFIT_REFERENCE_DIR"):
        load_reference(tmp_path / "nope")


def test_ode_matches_solve_ivp_and_logp_finite(ref):
    from nadfit.fitting.benchmark.ode_jax import solve_numpy
    from nadfit.fitting.benchmark.reference import build_pk_model, logp_at, make_pk_rhs, pk_solver_jax

    assert ref.times.shape == (20,) and ref.C_hat.shape == (20,)
    theta = np.array([ref.mean[p] for p in ("k_a", "K_m", "V_m")])
    ys, ok = pk_solver_jax(ref)(np.zeros(1), theta)
    assert float(ok) == 1.0
    rhs = make_pk_rhs(ref.data["D"], ref.data["V"])
    expected = solve_numpy(rhs, ref.times, [0.0], theta, t0=float(ref.data["t0"]),
                           method="LSODA", rtol=1e-10, atol=1e-12)
    rel = np.max(np.abs(np.asarray(ys) - expected) / np.abs(expected))
    assert rel < 1e-5, rel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # numba object-mode note for the JAX op
        model = build_pk_model(ref)
        lp = logp_at(model, ref.mean)
    assert math.isfinite(lp), lp


def test_failed_solve_gives_minus_inf():
    """Solver failure (here: max_steps exhausted) must give ok=0, finite ys and -inf logp term."""
    import pytensor.tensor as pt

    from nadfit.fitting.benchmark.ode_jax import failure_logp, make_jax_solver

    def stiff(t, y, theta, xp):
        return xp.stack([-theta[0] * y[0]])

    solve = make_jax_solver(stiff, [1.0, 2.0], max_steps=4)
    ys, ok = solve(np.ones(1), np.array([1e4]))
    assert float(ok) == 0.0 and np.all(np.isfinite(np.asarray(ys)))
    assert failure_logp(pt.as_tensor(0.0)).eval() == -np.inf
    assert failure_logp(pt.as_tensor(1.0)).eval() == 0.0


@pytest.mark.slow  # 77 s: the three benchmark paths end to end (developer tool)
def test_bench_paths_tiny(ref):
    """All three bench paths run (1 chain x 50 tune x 50 draws) and report the same keys."""
    from nadfit.fitting.benchmark.paths import (
        RESULT_KEYS,
        pk_problem,
        run_numpyro_diffrax,
        run_pm_ode,
        run_production_like,
    )

    prob = pk_problem(ref)
    kw = {"chains": 1, "tune": 50, "draws": 50, "seed": 3}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = [
            run_production_like(prob, **kw),
            run_numpyro_diffrax(prob, **kw),
            run_pm_ode(prob, max_seconds=20.0, **kw),
        ]
        capped = run_pm_ode(prob, chains=2, tune=200, draws=200, seed=3, max_seconds=1.0)
        capped_np = run_numpyro_diffrax(prob, chains=2, tune=200, draws=200, seed=3, max_seconds=0.5)
        vec = run_numpyro_diffrax(prob, chain_method="vectorized", **(kw | {"chains": 2}))
    with pytest.raises(ValueError, match="parallel"):
        run_numpyro_diffrax(prob, chain_method="parallel")
    for r in results:
        assert set(RESULT_KEYS) <= set(r), r
        assert r["draws_done"] > 0
        assert r["total_s"] >= r["sample_s"] > 0
        assert r["min_ess_bulk"] is None or r["min_ess_bulk"] > 0
    for c in (capped, capped_np):
        assert c["extrapolated"] is True and "cap" in c["note"]
        assert c["iterations_done"] < c["iterations_planned"]
        assert c["total_s"] > c["compile_s"] + c["sample_s"]
    # the numpyro path completes: all draws, both chains of the vectorized run
    np_full = results[1]
    assert np_full["extrapolated"] is False and np_full["draws_done"] == 50
    assert vec["draws_done"] == 100 and vec["chain_method"] == "vectorized"
    assert np_full["max_rhat"] is None or np.isfinite(np_full["max_rhat"])


@pytest.mark.slow
def test_reference_posterior_reproduced(ref):
    from nadfit.fitting.benchmark.reference import check_reference, format_table

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # 3000 draws: with 1000 the heavy K_m/V_m tail is under-visited in some seeds (seed 7:
        # V_m log-mean z = -3.99); see fitting.reference.check_reference
        res = check_reference(draws=3000, chains=4)
    print(format_table(res))
    print({k: res[k] for k in ("wall_s", "min_ess_bulk", "max_r_hat", "divergences", "verdict")})
    assert res["max_r_hat"] < 1.02
    for name, r in res["params"].items():
        if r["z_gates"]:  # raw-mean z is reported only for heavy-tailed K_m / V_m
            assert abs(r["z"]) < 4, (name, r)
        assert abs(r["z_log"]) < 4, (name, r)
        assert r["ks_p"] > 1e-3, (name, r)
    assert not res["params"]["k_a"]["heavy_tailed"] and not res["params"]["sigma"]["heavy_tailed"]
    assert res["verdict"] == "pass"


def test_default_reference_dir_is_the_shared_folder_beside_the_project(monkeypatch):
    """The fixture is looked up in ``../shared/reference`` next to the project root. (After the
    layout change the lookup pointed inside the project, so every reference test skipped.)"""
    from pathlib import Path

    from nadfit.fitting.benchmark.reference import FIXTURE_NAME, _default_dir

    monkeypatch.delenv("NADFIT_REFERENCE_DIR", raising=False)
    root = Path(__file__).resolve().parents[3]
    assert (root / "pyproject.toml").is_file()
    assert _default_dir() == root.parent / "shared" / "reference" / FIXTURE_NAME
