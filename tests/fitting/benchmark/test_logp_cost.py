"""nadfit bench --logp-cost: the report's ratios come from the two sides' measurements, and a
reference path that is not a source tree is a one-line user error (no measurement is run here:
timings belong to the bench, not to tests)."""

from __future__ import annotations

import pytest


def _side(scale: float) -> dict:
    return {"logp_grad_ms": 2.0 * scale, "logp_grad_min_ms": 1.5 * scale, "blood_grad_ms": 1.0 * scale,
            "blood_grad_min_ms": 0.8 * scale, "rest_grad_ms": 1.0 * scale, "rest_grad_min_ms": 0.7 * scale,
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
    assert "| direct | 1.00 / 0.75 |" in text and "0.25 / 0.25" in text


def test_reference_tree_must_be_a_source_tree(tmp_path):
    from nadfit.datasets.errors import UserError
    from nadfit.fitting.benchmark.logp_cost import compare

    with pytest.raises(UserError, match="not a nadfit source tree"):
        compare(tmp_path, hypotheses=("direct",))
