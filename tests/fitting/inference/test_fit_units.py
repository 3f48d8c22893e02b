"""Fit configuration, evidence selection and diagnostics gates (no sampling)."""

import json

import numpy as np
import pytest

from nadfit.datasets import load_evidence
from nadfit.datasets.errors import UserError
from nadfit.fitting.inference.config import SAMPLERS, FitConfig, config_from_file, make_config, select_evidence
from nadfit.fitting.inference.fit import chain_method, gate_results


def test_gates_pass_and_fail_at_the_documented_thresholds():
    good = {"a": {"r_hat": 1.005, "ess_bulk": 800.0}, "b": {"r_hat": 1.0, "ess_bulk": 401.0}}
    g = gate_results(good, 0)
    assert all(v["passed"] for v in g.values())
    bad = {"a": {"r_hat": 1.02, "ess_bulk": 800.0}, "b": {"r_hat": 1.0, "ess_bulk": 399.0}}
    g = gate_results(bad, 1)
    assert not g["r_hat_max"]["passed"] and not g["ess_bulk_min"]["passed"] and not g["divergences"]["passed"]
    assert g["r_hat_max"]["value"] == 1.02 and g["ess_bulk_min"]["value"] == 399.0


@pytest.mark.parametrize("field,value,msg", [
    ("hypothesis", "direct-ish", "unknown hypothesis"),
    ("draws", 0, "draws must be a positive whole number"),
    ("chains", -1, "chains must be a positive whole number"),
    ("tune", -5, "tune must be a positive whole number"),
    ("seed", -1, "seed must be a non-negative"),
    ("target_accept", 1.2, "target_accept must be in"),
    ("widen_priors", 0.0, "widen_priors must be a positive"),
    ("sampler", "stan", "unknown sampler 'stan'; choose one of numpyro, nutpie"),
    ("dense_mass", "yes", "dense_mass must be true or false"),
    ("sampler", "blackjax", "unknown sampler 'blackjax'"),
])
def test_config_validation(field, value, msg):
    cfg = FitConfig()
    setattr(cfg, field, value)
    with pytest.raises(UserError, match=msg):
        cfg.validate()


def test_config_file_toml_and_yaml(tmp_path):
    t = tmp_path / "c.toml"
    t.write_text('hypothesis = "via-nr"\ndraws = 200\nobservation = { tau = 0.2 }\n')
    cfg = config_from_file(t)
    assert cfg.hypothesis == "via-nr" and cfg.draws == 200 and cfg.settings().tau == 0.2
    y = tmp_path / "c.yaml"
    y.write_text("hypothesis: mixed\nprior_widen: 2\n")
    with pytest.raises(UserError, match="unknown setting 'prior_widen'") as err:
        config_from_file(y)
    assert str(y) in str(err.value)
    y.write_text("observation: {taux: 1}\n")
    with pytest.raises(UserError, match="unknown observation setting"):
        config_from_file(y)


def test_evidence_selection_by_study_and_row():
    ev = load_evidence()
    only = select_evidence(ev, ["yi2022", "EV028"], [])
    assert set(only["study_id"]) == {"yi2022", "huang2022"} and "EV028" in set(only["evidence_id"])
    without = select_evidence(ev, [], ["grozio2019"])
    assert "grozio2019" not in set(without["study_id"]) and len(without) == len(ev) - (ev["study_id"] == "grozio2019").sum()
    with pytest.raises(UserError, match="matches no study or evidence id"):
        select_evidence(ev, ["nosuchstudy"], [])


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sampler_round_trips_through_config_file_and_config_json(tmp_path, sampler):
    t = tmp_path / "c.toml"
    t.write_text(f'sampler = "{sampler}"\ndense_mass = true\n')
    cfg = config_from_file(t)
    assert cfg.sampler == sampler and cfg.dense_mass is True
    again = FitConfig(**json.loads(json.dumps(cfg.to_dict()))).validate()  # as config.json is read back
    assert again == cfg
    assert make_config(None, sampler=sampler).sampler == sampler


def test_chains_without_a_device_of_their_own_are_vectorised():
    assert chain_method(4, 4) == "parallel" and chain_method(2, 8) == "parallel"
    assert chain_method(4, 1) == "vectorized" and chain_method(5, 4) == "vectorized"


def test_posterior_predictive_uses_each_rows_own_simulator():
    """y_rep on each row's reported scale: the median of an arm's % change is 100 (e^q - 1), a time
    row is in its reported unit, a p-value lies in (0, 1]; findings get p_finding, not y_rep."""
    import math

    import xarray as xr

    from nadfit.fitting.inference.fit import _posterior_predictive
    from nadfit.models.model import EvidenceModel

    model = EvidenceModel("mixed", load_evidence())
    th = model.prior_median_theta()
    chains, draws = 2, 400
    q = np.zeros((chains, draws, len(model.items)))
    ll = np.full_like(q, -0.5)
    for k, it in enumerate(model.items):
        q[..., k] = 0.3 if it.kind in ("arm_mean_change", "approximate_change", "t_paired_exact_p",
                                        "log_ratio_vs_placebo") else math.log(14.0)
    data = {n: (("chain", "draw"), np.full((chains, draws), float(th[n]))) for n in model.scalar_parameters}
    data["model_quantity"] = (("chain", "draw", "evidence_id"), q)
    data["loglik_item"] = (("chain", "draw", "evidence_id"), ll)
    post = xr.Dataset(data, coords={"evidence_id": model.evidence_ids})
    y_rep, p_find = _posterior_predictive(model, post, seed=3)
    seen = set()
    for k, it in enumerate(model.items):
        y = y_rep[..., k].ravel()
        if it.kind == "arm_mean_change":
            assert np.median(y) == pytest.approx(100 * math.expm1(0.3), rel=0.05)
        elif it.kind == "approximate_time":
            assert np.median(y) == pytest.approx(14.0 / it.const["unit_days"], rel=0.1)
        elif it.kind == "t_paired_exact_p":
            assert ((y > 0) & (y <= 1)).all()
        elif it.keyword is not None:
            assert np.isnan(y).all() and np.allclose(p_find[..., k], math.exp(-0.5))
            continue
        else:
            continue
        seen.add(it.kind)
    assert seen == {"arm_mean_change", "approximate_time", "t_paired_exact_p"}


def test_log_likelihood_group_keeps_the_claim_unit_through_a_netcdf_round_trip(tmp_path):
    """Both units are data variables after writing and reading the file (the claim terms were
    read back as a coordinate when named like their dimension, and the comparison lost them)."""
    import xarray as xr

    from nadfit.fitting.comparison.assemble import loglik_vars, unit_labels
    from nadfit.fitting.inference.fit import log_likelihood_group

    rng = np.random.default_rng(0)
    post = xr.Dataset({"loglik_study": (("chain", "draw", "study"), rng.normal(size=(2, 5, 3))),
                       "loglik_claim": (("chain", "draw", "claim"), rng.normal(size=(2, 5, 4)))},
                      coords={"study": ["s1", "s2", "s3"], "claim": ["c1", "c2", "c3", "c4"]})
    path = tmp_path / "ll.nc"
    xr.DataTree.from_dict({"log_likelihood": log_likelihood_group(post)}).to_netcdf(path, engine="h5netcdf")
    dt = xr.open_datatree(path, engine="h5netcdf")
    assert loglik_vars(dt) == ["evidence", "claim"]
    assert unit_labels(dt, "claim") == ["c1", "c2", "c3", "c4"]
    np.testing.assert_array_equal(dt["log_likelihood"]["claim"].values, post["loglik_claim"].values)
