"""``nadfit bench --compare-samplers``: the cases, the ratios, the report (no sampling), and one quick run (slow)."""

from __future__ import annotations

import json

import pytest

from nadfit.fitting.benchmark.samplers import TODAY, cases, default_settings, format_sampler_report, ratios


def test_cases_compare_today_with_the_default_on_all_cores_and_on_one():
    cs = cases(("direct", "mixed"), cores=2)
    assert [(c["hypothesis"], c["label"], c["cores"]) for c in cs] == [
        ("direct", "today", 2), ("direct", "default", 2), ("direct", "default, 1 core", 1),
        ("mixed", "today", 2), ("mixed", "default", 2), ("mixed", "default, 1 core", 1)]
    assert cs[0]["settings"] == TODAY and cs[1]["settings"] == default_settings()
    json.dumps(cs)  # a child process gets its case as JSON


def _r(h, label, sample_s, ess, cores=2):
    return {"hypothesis": h, "label": label, "cores": cores, "settings": dict(TODAY), "sample_s": sample_s,
            "compile_s": 1.0, "ess_bulk_min": ess, "r_hat_max": 1.001, "divergences": 0, "ess_per_s": ess / sample_s,
            "gradients_per_effective_draw": 50.0, "logp_grad_ms": 0.5}


def test_ratios_are_ess_per_second_and_one_core_over_all_cores():
    res = [_r("direct", "today", 100.0, 500.0), _r("direct", "default", 20.0, 400.0),
           _r("direct", "default, 1 core", 36.0, 400.0, cores=1)]
    q = ratios(res)["direct"]
    assert q["ess_per_s_default_over_today"] == pytest.approx((400 / 20) / (500 / 100), rel=1e-2)
    assert q["parallel_speedup"] == pytest.approx(1.8)
    res[1] = {**res[1], "error": "boom"}
    assert ratios(res)["direct"] == {"ess_per_s_default_over_today": None, "parallel_speedup": None}
    machine = {"cpus": 2, "usable_cpus": 2, "load_avg_1min_start": 1.0, "load_avg_1min_end": 2.0}
    text = format_sampler_report({"quick": False, "machine": machine, "results": res, "ratios": ratios(res)})
    assert "failed: boom" in text and "load average" in text


@pytest.mark.slow
def test_quick_sampler_bench_runs_every_case(tmp_path):
    from nadfit.fitting.cli import main

    out = tmp_path / "b.json"
    assert main(["bench", "--compare-samplers", "--quick", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert len(res["results"]) == 3 and not [r for r in res["results"] if "error" in r]
    by = {r["label"]: r for r in res["results"]}
    assert by["default, 1 core"]["cpus"] == by["default"]["cpus"][:1]
    assert by["default"]["devices"] >= by["default"]["settings"]["chains"]
    assert all(r["gradients_per_effective_draw"] > 0 and r["logp_grad_ms"] > 0 for r in res["results"])
