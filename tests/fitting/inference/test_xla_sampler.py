"""A real fit with the XLA sampler (numpyro) on a small evidence subset: same run folder, same
gates, computed from the new sampler's trace. Slow (an XLA compile of the whole sampler)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nadfit.fitting.inference.config import FitConfig

SMALL = {"hypothesis": "direct", "evidence": ["yi2022"], "draws": 60, "tune": 60, "chains": 2,
         "prior_draws": 20, "seed": 7, "target_accept": 0.9, "accept_failed_gates": True}


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["numpyro"])
def test_quick_fit_with_the_xla_sampler_writes_a_full_run(tmp_path, sampler):
    from nadfit.fitting.inference.fit import GATES, run_fit
    from nadfit.fitting.inference.runs import load_posterior

    events = []
    s = run_fit(FitConfig(sampler=sampler, **SMALL), tmp_path / "run", on_progress=events.append)
    phases = [e["phase"] for e in events]
    assert phases[0] == "compile" and "sample" in phases and phases[-1] == "done"
    dt = load_posterior(tmp_path / "run")
    for group in ("posterior", "prior", "log_likelihood", "posterior_predictive", "predictions",
                  "observed_data", "sample_stats"):
        assert group in dt.children, group
    post = dt["posterior"]
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == s["sampler"]["draws"] >= 60
    assert "loglik_item" in post and "model_quantity" in post
    # the gates are computed on this trace: divergences from its sample_stats, ESS/R-hat from its draws
    div = int(dt["sample_stats"]["diverging"].sum())
    assert s["divergences"] == div and s["gates"]["divergences"]["value"] == div
    assert s["gates"]["divergences"]["passed"] == (div <= GATES["divergences_max"])
    # over the parameters the sampler moves: the marginalised latents (drawn after sampling, one
    # independent draw per posterior draw) are summarised but not gated (since session 16)
    from nadfit.models.model import MARGINALISED

    gated = {k: r for k, r in s["parameters"].items() if k.split("[")[0] not in MARGINALISED}
    assert len(gated) < len(s["parameters"])  # this subset has a marginalised latent
    ess = min(r["ess_bulk"] for r in gated.values())
    assert s["gates"]["ess_bulk_min"]["value"] == pytest.approx(ess)
    assert s["sampler"]["name"] == sampler and s["sampler"]["target_accept"] == 0.9
    n_steps = dt["sample_stats"]["n_steps"].values
    assert s["sampler"]["gradient_evaluations_draws"] == int(n_steps.sum()) > 0
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["sampler"] == sampler
    # the deterministics are the model's own function of the drawn parameters
    assert np.isfinite(post["loglik_item"].values).all()
