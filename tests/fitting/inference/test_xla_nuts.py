"""The numpyro driver (``inference.xla_nuts``): the same draws as ``pm.sample``, and chains that
continue after their warm-up while the convergence gates are not met (``inference.fit.gate_shortfall``)."""

from __future__ import annotations

import numpy as np
import pytest

from nadfit.datasets.errors import UserError
from nadfit.fitting.inference.config import MAX_DRAWS_FACTOR, FitConfig
from nadfit.fitting.inference.fit import chain_method, gate_shortfall
from nadfit.fitting.inference.xla_nuts import continuation_draws, sample_numpyro

SEED = 11


@pytest.fixture(scope="module")
def toy():
    """A small hierarchical model with a deterministic and a coordinate."""
    import pymc as pm

    with pm.Model(coords={"g": ["a", "b", "c"]}) as m:
        mu = pm.Normal("mu", 0, 1)
        tau = pm.HalfNormal("tau", 1)
        z = pm.Normal("z", 0, 1, dims="g")
        th = pm.Deterministic("th", mu + tau * z, dims="g")
        pm.Normal("y", th, 1, observed=np.array([0.5, -0.3, 1.2]), dims="g")
    return m


def _method(chains):
    import jax

    return chain_method(chains, jax.local_device_count())


def test_same_draws_and_layout_as_pm_sample(toy):
    import pymc as pm

    ref = pm.sample(draws=40, tune=30, chains=2, nuts_sampler="numpyro", random_seed=SEED, model=toy,
                    nuts={"chain_method": _method(2), "target_accept": 0.9}, progressbar=False,
                    compute_convergence_checks=False)
    dt, batches = sample_numpyro(toy, draws=40, tune=30, chains=2, seed=SEED, target_accept=0.9,
                                 chain_method=_method(2))
    assert batches == 1
    assert set(dt.children) == set(ref.children)
    assert set(dt["sample_stats"].data_vars) == set(ref["sample_stats"].data_vars)
    for v in ("mu", "tau", "z", "th"):
        assert dt["posterior"][v].dims == ref["posterior"][v].dims
        # the same chains: nadfit's sampler moves one flat vector (``flat_position``) where
        # pm.sample moves one array per variable; the compiled programs differ, so the
        # draws differ in the last digits (6e-8 relative after 70 iterations), not more
        np.testing.assert_allclose(dt["posterior"][v].values, ref["posterior"][v].values, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(dt["sample_stats"]["n_steps"].values, ref["sample_stats"]["n_steps"].values)


def test_chains_continue_while_the_rule_names_a_reason(toy):
    seen, batches_seen = [], []

    def shortfall(trace):
        seen.append((trace["posterior"].sizes["draw"], sorted(trace["posterior"].data_vars)))
        return "not yet" if len(seen) < 2 else None

    shortfall.var_names = ["mu", "tau"]
    dt, batches = sample_numpyro(toy, draws=30, tune=30, chains=2, seed=SEED, target_accept=0.9,
                                 chain_method=_method(2), max_draws=200, shortfall=shortfall,
                                 on_batch=lambda *a: batches_seen.append(a))
    assert continuation_draws(30) == 15
    assert batches == 2 and dt["posterior"].sizes["draw"] == 45
    assert seen == [(30, ["mu", "tau"]), (45, ["mu", "tau"])]  # a partial trace: only the named variables
    assert batches_seen == [(30, 15, "not yet")]
    assert dt["sample_stats"]["diverging"].shape == (2, 45)
    one, _ = sample_numpyro(toy, draws=30, tune=30, chains=2, seed=SEED, target_accept=0.9,
                            chain_method=_method(2))
    # the continuation extends the same chains: the first batch is the uncontinued run's draws
    np.testing.assert_array_equal(one["posterior"]["z"].values, dt["posterior"]["z"].values[:, :30])
    assert not np.array_equal(dt["posterior"]["z"].values[:, :15], dt["posterior"]["z"].values[:, 30:])
    # no second warm-up: each chain keeps the step size its warm-up ended with
    eps = dt["sample_stats"]["step_size"].values
    np.testing.assert_array_equal(eps[:, 30:], np.repeat(eps[:, :1], 15, axis=1))


def test_continuation_stops_at_max_draws(toy):
    calls = []

    def never(trace):
        calls.append(trace["posterior"].sizes["draw"])
        return "never enough"

    dt, batches = sample_numpyro(toy, draws=20, tune=20, chains=2, seed=SEED, target_accept=0.9,
                                 chain_method=_method(2), max_draws=55, shortfall=never)
    assert batches == 4 and dt["posterior"].sizes["draw"] == 50 and calls == [20, 30, 40]


def _trace(post: dict, diverging=None):
    import xarray as xr

    c, d = next(iter(post.values())).shape[:2]
    div = np.zeros((c, d), bool) if diverging is None else diverging
    return xr.DataTree.from_dict({
        "posterior": xr.Dataset({k: (("chain", "draw"), v) for k, v in post.items()}),
        "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), div)})})


def test_gate_shortfall_uses_the_run_gates():
    rng = np.random.default_rng(3)
    rule = gate_shortfall(["a", "b"], 200)
    assert rule.var_names == ["a", "b"]
    good = {"a": rng.normal(size=(4, 500)), "b": rng.normal(size=(4, 500))}
    assert rule(_trace(good)) is None  # 2000 independent draws: R-hat ~1, ESS ~2000
    few = {"a": rng.normal(size=(4, 50)), "b": rng.normal(size=(4, 50))}
    assert "ess_bulk_min" in rule(_trace(few))  # ESS ~200 < 400, ~800 expected at 200 draws per chain
    assert gate_shortfall(["a", "b"], 80)(_trace(few)) is None  # ~320 at most by 80 draws: not continued
    apart = dict(good, b=rng.normal(size=(4, 500)) + np.array([0, 0, 0, 1.0])[:, None])
    reason = gate_shortfall(["a", "b"], 100_000)(_trace(apart))  # chains apart: R-hat ~1.09, ESS ~33
    assert reason is not None and "r_hat_max" in reason
    assert gate_shortfall(["a", "b"], 2000)(_trace(apart)) is None  # ESS ~130 at most by 2000 draws
    div = np.zeros((4, 50), bool)
    div[0, 3] = True
    assert rule(_trace(few, div)) is None  # divergences: the retry, not more draws


def test_max_draws_setting():
    assert FitConfig(max_draws=False).validate().draws_cap() == FitConfig().draws  # never continue
    assert FitConfig(draws=40).validate().draws_cap() == 40 * MAX_DRAWS_FACTOR
    assert FitConfig(draws=40, max_draws=100).validate().draws_cap() == 100
    assert FitConfig(draws=400, max_draws=100).validate().draws_cap() == 400
    for bad in (-5, 2.5, True, "many"):
        with pytest.raises(UserError, match="max_draws"):
            FitConfig(max_draws=bad).validate()


@pytest.mark.parametrize("batched", [True, False])
def test_flat_position_round_trip(batched):
    from nadfit.fitting.inference.xla_nuts import flat_position

    rng = np.random.default_rng(0)
    shapes = [(), (4,), (2, 3), ()]
    lead = (3,) if batched else ()
    points = [rng.normal(size=(*lead, *s)) for s in shapes]
    x0, unravel, unravel_draws = flat_position(points, batched=batched)
    assert x0.shape == (*lead, 1 + 4 + 6 + 1)
    first = x0[0] if batched else x0
    for a, b in zip(unravel(first), points):
        np.testing.assert_array_equal(a, b[0] if batched else b)
    # draws (chain, draw, n) come back per variable as (chain, draw, *shape), in order
    draws = np.stack([np.atleast_2d(x0), 2 * np.atleast_2d(x0)], axis=1)
    back = unravel_draws(draws)
    assert [b.shape for b in back] == [(draws.shape[0], 2, *s) for s in shapes]
    for a, b in zip(back, points):
        np.testing.assert_array_equal(a[:, 1], 2 * (b if batched else b[None]))


@pytest.fixture(scope="module")
def funnel():
    """Neal's funnel (centred): NUTS diverges in its neck at a low target_accept."""
    import pymc as pm

    with pm.Model() as m:
        v = pm.Normal("v", 0, 3)
        pm.Normal("x", 0, pm.math.exp(v / 2), shape=4)
    return m


def test_divergent_draws_are_drawn_again_with_a_smaller_step_after_the_same_warm_up(funnel):
    kw = dict(draws=60, tune=60, chains=2, seed=SEED, target_accept=0.6, chain_method=_method(2))
    first, _ = sample_numpyro(funnel, **kw)
    n = int(first["sample_stats"]["diverging"].sum())
    assert n > 0  # the case under test: the first draws diverge
    seen = []
    dt, _ = sample_numpyro(funnel, **kw, redraw_step_factor=0.5, on_redraw=lambda d, f: seen.append((d, f)))
    assert seen == [(n, 0.5)]
    assert dt["posterior"].attrs["redraws"] == 1 and dt["posterior"].attrs["divergences_discarded"] == n
    assert dt["posterior"].sizes["draw"] == 60
    # the same warm-up (same adapted step size per chain), then half of it for every kept draw
    adapted = first["sample_stats"]["step_size"].values[:, 0]
    np.testing.assert_allclose(dt["sample_stats"]["step_size"].values, 0.5 * adapted[:, None] * np.ones((1, 60)))


def test_draws_without_divergences_are_kept(toy):
    seen = []
    dt, _ = sample_numpyro(toy, draws=40, tune=30, chains=2, seed=SEED, target_accept=0.9, chain_method=_method(2),
                           redraw_step_factor=0.5, on_redraw=lambda d, f: seen.append((d, f)))
    assert int(dt["sample_stats"]["diverging"].sum()) == 0 and dt["posterior"].attrs["redraws"] == 0 and not seen
