"""Assemble the PyMC 6 model from an EvidenceModel: priors as random variables, the JAX
evidence likelihood wrapped with ``pytensor.wrap_jax``.

The likelihood enters through one ``pm.Potential`` (the sum of the per-study terms of
``EvidenceModel.terms``); the pointwise terms are kept as deterministics so that LOO, weighting
and attribution can use them (a Potential alone would be invisible to LOO): ``loglik_study``
(primary unit), ``loglik_claim`` (leave-one-claim-out conditionals), ``loglik_claim_raw`` (each
claim given a reliable study: the terms under another reliability prior follow from it without
re-evaluating the model), ``loglik_item`` (each row's
term given a reliable study; diagnostics) and ``model_quantity`` per row. The marginalised
latents (``models.model.MARGINALISED``) are not random variables here: ``model.terms``
integrates them out, and ``inference.latents`` draws them after sampling.
"""

from __future__ import annotations

import weakref

import pymc as pm
import pytensor
import pytensor.tensor as pt

from nadfit.models.model import EvidenceModel
from nadfit.models.priors import Prior

#: prior multipliers for the documented "wider prior set" sensitivity refit
WIDER_FACTOR = 2.0


def make_rv(prior: Prior, widen: float = 1.0):
    a = prior.args
    name = prior.name
    if prior.family == "lognormal":
        return pm.LogNormal(name, mu=a["mu"], sigma=a["sigma"] * widen)
    if prior.family == "normal":
        return pm.Normal(name, mu=a["mu"], sigma=a["sigma"] * widen)
    if prior.family == "halfnormal":
        return pm.HalfNormal(name, sigma=a["sigma"] * widen)
    if prior.family == "truncnormal":
        return pm.TruncatedNormal(name, mu=a["mu"], sigma=a["sigma"] * widen, lower=a["lower"], upper=a["upper"])
    if prior.family == "beta":
        # widening a Beta keeps its mean and divides its concentration
        return pm.Beta(name, alpha=a["alpha"] / widen, beta=a["beta"] / widen)
    if prior.family == "uniform":
        return pm.Uniform(name, lower=a["lower"], upper=a["upper"])
    if prior.family == "gamma":
        # widening keeps the mean and divides the shape
        return pm.Gamma(name, alpha=a["alpha"] / widen, beta=a["beta"] / widen)
    raise ValueError(prior.family)


def build_pymc_model(model: EvidenceModel, widen: float = 1.0, likelihood_weight: float = 1.0) -> pm.Model:
    """The PyMC model. ``widen`` scales every prior's spread (sensitivity analysis);
    ``likelihood_weight`` tempers the evidence (used by power-scaling checks)."""
    coords = {"evidence_id": model.evidence_ids, "study": list(model.study_ids), "claim": model.claim_ids}
    for dim, labels in model.vector_parameters.values():
        coords[dim] = list(labels)

    def all_terms(th):
        t = model.terms(th)
        return t["study"], t["claim"], t["claim_raw"], t["item"], t["pred"]

    jax_fn = pytensor.wrap_jax(all_terms)
    with pm.Model(coords=coords) as pm_model:
        theta = {name: make_rv(prior, widen) for name, prior in model.priors().items()}
        # the marginalised latents are integrated inside model.terms (models/latent.py) and
        # drawn after sampling (inference.latents)
        for name, (dim, _) in model.sampled_vector_parameters.items():
            theta[name] = pm.Normal(name, 0.0, 1.0, dims=dim)
        ll_study, ll_claim, ll_claim_raw, ll_item, pred = jax_fn(theta)
        pm.Deterministic("loglik_study", ll_study, dims="study")
        pm.Deterministic("loglik_claim", ll_claim, dims="claim")
        pm.Deterministic("loglik_claim_raw", ll_claim_raw, dims="claim")
        pm.Deterministic("loglik_item", ll_item, dims="evidence_id")
        pm.Deterministic("model_quantity", pred, dims="evidence_id")
        pm.Potential("evidence", likelihood_weight * pt.sum(ll_study))
    _SOURCE[pm_model] = model
    return pm_model


#: the EvidenceModel each PyMC model was built from (for drawing its marginalised latents)
_SOURCE: "weakref.WeakKeyDictionary[pm.Model, EvidenceModel]" = weakref.WeakKeyDictionary()


def evidence_model_of(pm_model) -> EvidenceModel | None:
    """The EvidenceModel ``pm_model`` was built from by :func:`build_pymc_model`, or None."""
    try:
        return _SOURCE.get(pm_model)
    except TypeError:  # not weakly referable
        return None
