"""Calibration machinery: ranks, thinning, uniformity test, recovery/SBC outputs (stubbed sampler),
plus slow real-sampler recovery and SBC runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nadfit.fitting.calibration import sbc as cal


def _stub_sampler(pm_model, cfg):
    """Prior draws in the shape nutpie returns (posterior + sample_stats groups)."""
    import pymc as pm
    import xarray as xr

    rvs = list(pm_model.free_RVs)
    n = cfg.chains * cfg.draws
    values = pm.draw(rvs, draws=n, random_seed=cfg.seed)
    data = {}
    for rv, v in zip(rvs, values):
        dims = pm_model.named_vars_to_dims.get(rv.name, ())
        v = np.asarray(v).reshape((cfg.chains, cfg.draws) + np.shape(v)[1:])
        data[rv.name] = (("chain", "draw") + tuple(dims), v)
    coords = {k: list(v) for k, v in pm_model.coords.items()}
    post = xr.Dataset(data, coords={"chain": np.arange(cfg.chains), "draw": np.arange(cfg.draws),
                                    **{k: v for k, v in coords.items() if k != "evidence_id"}})
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros((cfg.chains, cfg.draws), bool))})
    from nadfit.fitting.inference.latents import with_latents

    # as the real sampler: the marginalised latents drawn afterwards
    return with_latents(xr.DataTree.from_dict({"posterior": post, "sample_stats": stats}), pm_model, cfg.seed)


@pytest.fixture
def stubbed(monkeypatch):
    calls = []

    def fake(pm_model, cfg):
        calls.append(cfg)
        return _stub_sampler(pm_model, cfg)

    monkeypatch.setattr(cal, "sample_posterior", fake)
    return calls


def test_thin_indices():
    idx, ok = cal.thin_indices(1000, 250.0, 99)
    assert ok and len(idx) == 99 and len(set(idx)) == 99 and np.all(idx % 4 == 0)
    idx, ok = cal.thin_indices(1000, 50.0, 99)  # too few effective draws: evenly spaced over all
    assert not ok and len(idx) == 99 and idx[0] == 0 and idx[-1] == 999
    with pytest.raises(ValueError):
        cal.thin_indices(50, 50.0, 99)


def test_ranks_of_counts_draws_below_truth():
    draws = {"a": np.arange(10.0).reshape(2, 5), "b": np.zeros((2, 5))}
    idx = np.arange(10)
    r = cal.ranks_of({"a": 3.5, "b": 0.0}, {k: v.reshape(-1) for k, v in draws.items()}, idx)
    assert r["a"] == 4
    assert 0 <= r["b"] <= 10  # ties broken at random, deterministically
    assert r == cal.ranks_of({"a": 3.5, "b": 0.0}, {k: v.reshape(-1) for k, v in draws.items()}, idx)
    assert cal.ranks_of({"a": -1.0}, {"a": np.arange(10.0)}, idx)["a"] == 0
    assert cal.ranks_of({"a": 99.0}, {"a": np.arange(10.0)}, idx)["a"] == 10


def test_bins_and_uniformity():
    assert cal.n_bins(200, 99) == 10
    assert cal.n_bins(20, 99) == 4
    assert cal.n_bins(8, 99) == 2
    assert cal.n_bins(100, 19) == 10 and cal.n_bins(30, 19) == 5
    rng = np.random.default_rng(1)
    good = {f"p{i}": list(rng.integers(0, 100, 200)) for i in range(20)}
    bad = {"too_narrow": [0] * 100 + [99] * 100, "biased": list(rng.integers(0, 30, 200))}
    bins, thr, chi2, passed = cal.uniformity({**good, **bad}, 99)
    assert bins == 10 and thr == pytest.approx(0.01 / 22)
    assert not passed["too_narrow"] and not passed["biased"]
    assert sum(passed[k] for k in good) >= 19
    assert chi2["biased"]["df"] == 9 and chi2["biased"]["p"] < 1e-10
    assert list(cal.bin_counts([0, 9, 10, 99], 99, 10)) == [2, 1, 0, 0, 0, 0, 0, 0, 0, 1]


def test_prior_vs_prior_ranks_are_uniform():
    """Truth and 'posterior' both from the prior: SBC ranks must look uniform (machinery check)."""
    from nadfit.datasets import load_evidence
    from nadfit.models.model import EvidenceModel

    model = EvidenceModel("mixed", load_evidence())
    rng = np.random.default_rng(7)
    n_sims, L = 200, 99
    truths = cal.draw_prior_matrix(model, n_sims, rng)
    draws = cal.draw_prior_matrix(model, n_sims * L, rng)
    assert set(truths) == set(cal.parameter_labels(model))
    ranks = {lab: [] for lab in truths}
    for i in range(n_sims):
        truth = {lab: float(v[i]) for lab, v in truths.items()}
        mat = {lab: v[i * L:(i + 1) * L] for lab, v in draws.items()}
        for lab, r in cal.ranks_of(truth, mat, np.arange(L)).items():
            ranks[lab].append(r)
    assert set(ranks) >= {"beta", "mu_phi", "z_phi[human]", "z_het[yi2022]"}
    _, _, chi2, passed = cal.uniformity(ranks, L)
    assert sum(passed.values()) >= len(passed) - 1, {k: v for k, v in chi2.items() if not passed[k]}


def test_recovery_machinery_with_stub(stubbed, tmp_path):
    from nadfit.fitting.inference.config import FitConfig

    cfg = FitConfig(hypothesis="mixed", draws=400, tune=0, chains=2, seed=3)
    doc = cal.run_recovery("mixed", tmp_path / "rec", truth="median", cfg=cfg, seed=3)
    assert len(stubbed) == 1 and stubbed[0].draws == 400
    on_disk = json.loads((tmp_path / "rec" / "recovery.json").read_text())
    assert (tmp_path / "rec" / "COMPLETE").exists()
    assert on_disk["key_parameters"] == list(cal.KEY_PARAMETERS)
    assert on_disk == json.loads(json.dumps(doc))
    # the stub returns the prior: no contraction, nothing identifiable, the median sits mid-posterior
    assert on_disk["identifiable_key_parameters"] == [] and on_disk["passed"]
    for k in ("beta", "pi_nmn", "mu_phi"):
        row = on_disk["parameters"][k]
        assert abs(row["contraction"]) < 0.2 and 0.4 < row["quantile"] < 0.6 and row["covered"]
    assert on_disk["coverage_all"] > 0.9
    assert len(on_disk["simulated_outcomes"]) > 20


def test_sbc_simulation_and_aggregate_with_stub(stubbed, tmp_path):
    res = [cal.sbc_simulation("via-nr", i, seed=5, draws=60, tune=0, chains=2, rank_draws=19) for i in range(2)]
    assert res[0]["theta"] != res[1]["theta"]
    again = cal.sbc_simulation("via-nr", 1, seed=5, draws=60, tune=0, chains=2, rank_draws=19)
    assert again["theta"] == res[1]["theta"] and again["ranks"] == res[1]["ranks"]  # pure function of its inputs
    assert all(0 <= v <= 19 for r in res for v in r["ranks"].values())
    assert "z_het[yi2022]" in res[0]["ranks"] and "mu_phi" not in res[0]["ranks"]
    json.dumps(res)
    doc = cal.aggregate_sbc(res, [{"task": "x", "sim": 2, "error": "boom"}], "via-nr", tmp_path / "sbc.json",
                            tmp_path / "sbc_ranks.png", 1.5)
    on_disk = json.loads((tmp_path / "sbc.json").read_text())
    for key in ("hypothesis", "n_sims", "n_draws_per_sim", "ranks", "chi2", "uniformity_pass", "failed_sims",
                "wall_time_s"):
        assert key in on_disk
    assert on_disk["n_sims"] == 2 and on_disk["n_draws_per_sim"] == 19 and on_disk["failed_sims"][0]["sim"] == 2
    assert set(on_disk["chi2"]["beta"]) == {"stat", "df", "p"}
    assert (tmp_path / "sbc_ranks.png").stat().st_size > 1000
    assert doc["ranks"]["beta"] == [r["ranks"]["beta"] for r in res]


@pytest.mark.slow
@pytest.mark.parametrize("hypothesis", ["via-nr", "mixed"])
def test_parameter_recovery_real(tmp_path, hypothesis):
    """Fit simulated evidence at the prior medians; identifiable key parameters must be covered."""
    from nadfit.fitting.inference.config import FitConfig

    cfg = FitConfig(hypothesis=hypothesis, draws=300, tune=300, chains=2, seed=11)
    doc = cal.run_recovery(hypothesis, tmp_path / "rec", truth="median", cfg=cfg, seed=11)
    print(json.dumps({k: doc[k] for k in ("identifiable_key_parameters", "covered_key_parameters",
                                          "coverage_all", "divergences", "wall_time_s")}))
    assert doc["identifiable_key_parameters"], "no key parameter is identifiable"
    assert doc["passed"], doc["parameters"]


@pytest.mark.slow
def test_reduced_sbc(tmp_path):
    """Reduced SBC: 20 simulations, small fits, through the sweep engine (2 workers)."""
    doc = cal.run_sbc("via-nr", 20, tmp_path / "sbc", draws=150, tune=200, chains=1, rank_draws=99, workers=2)
    assert doc["n_sims"] >= 18
    print(json.dumps({"bins": doc["bins"], "fail": [k for k, v in doc["uniformity_pass"].items() if not v],
                      "wall": doc["wall_time_s"], "low_ess": doc["low_ess_sims"]}))
    assert sum(doc["uniformity_pass"].values()) >= len(doc["uniformity_pass"]) - 1
