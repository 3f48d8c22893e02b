"""nadfit bench --logp-cost: the report's ratios come from the two sides' measurements, and a
reference path that is not a source tree is a one-line user error (no measurement is run here:
timings belong to the bench, not to tests)."""

from __future__ import annotations

import pytest


def _side(scale: float) -> dict:
    return {"logp_grad_ms": 2.0 * scale, "logp_grad_min_ms": 1.5 * scale, "logp_grad_loop_ms": 0.6 * scale,
            "blood_grad_ms": 1.0 * scale, "blood_grad_min_ms": 0.8 * scale, "blood_grad_loop_ms": 0.3 * scale,
            "rest_grad_ms": 1.0 * scale, "rest_grad_min_ms": 0.7 * scale, "rest_grad_loop_ms": 0.3 * scale,
            "compile_s": 1.0}


def test_compare_takes_best_round_and_reports_ratio(monkeypatch, tmp_path):
    from nadfit.fitting.benchmark import logp_cost

    for name in logp_cost.PACKAGES:
        (tmp_path / name).mkdir()
    scales = iter([1.0, 4.0, 0.5, 2.0])  # new, reference, new, reference

    def fake_run(tree, hypotheses, calls):
        s = next(scales)
        return {"load_before": "1", "load_after": "1", "result": {h: _side(s) for h in hypotheses}}

    monkeypatch.setattr(logp_cost, "_run_tree", fake_run)
    res = logp_cost.compare(tmp_path, hypotheses=("direct",), calls=10, rounds=2)
    assert res["best"]["new"]["direct"]["logp_grad_ms"] == 1.0  # round 2 (scale 0.5)
    assert res["best"]["reference"]["direct"]["logp_grad_ms"] == 4.0  # round 2 (scale 2)
    assert res["ratio"]["direct"]["logp_grad_ms"] == pytest.approx(0.25)
    text = logp_cost.format_cost(res)
    assert "| direct | 1.00 / 0.75 / 0.30 |" in text and "0.25 / 0.25 / 0.25" in text
    assert res["ratio"]["direct"]["rest_grad_loop_ms"] == pytest.approx(0.25)


def test_loop_measurement_times_the_function_inside_one_xla_loop():
    """The in-loop timing evaluates value_and_grad inside one compiled loop: a function with more
    work per evaluation costs more per evaluation (so the loop body is not hoisted away)."""
    import jax.numpy as jnp

    from nadfit.fitting.benchmark.logp_cost import _loop_ms_per_call

    th = {"a": jnp.linspace(0.1, 1.0, 400), "b": jnp.asarray(0.3)}
    light = _loop_ms_per_call(lambda t: jnp.sum(t["a"]) * t["b"], th, calls=200)
    heavy = _loop_ms_per_call(lambda t: jnp.sum(jnp.sort(jnp.sin(jnp.outer(t["a"], t["a"]))[:, :50]) * t["b"]),
                              th, calls=200)
    assert 0.0 < light < heavy


def test_reference_tree_must_be_a_source_tree(tmp_path):
    from nadfit.datasets.errors import UserError
    from nadfit.fitting.benchmark.logp_cost import compare

    with pytest.raises(UserError, match="not a nadfit source tree"):
        compare(tmp_path, hypotheses=("direct",))
