"""The marginalised latents of a fit, drawn after sampling (models/latent.py).

The sampler moves every parameter except ``models.model.MARGINALISED``; each of their elements
is integrated out of the log density. Here one value per posterior draw is drawn from its
posterior given that draw's parameters and the evidence, so the run's posterior holds the same
variables, with the same meaning, as when they were sampled (reports, predictions, SBC ranks).
"""

from __future__ import annotations

import numpy as np

#: mixed into the fit's seed for the uniforms of the draws (independent of the sampler's stream)
STREAM = 73


def with_latents(trace, pm_model, seed: int):
    """``trace`` with the marginalised latents of ``pm_model``'s EvidenceModel added to its
    posterior group (dims chain, draw, element); unchanged for a model not built by
    ``inference.build.build_pymc_model``."""
    import xarray as xr

    from nadfit.fitting.inference.build import evidence_model_of
    from nadfit.fitting.inference.pointwise import map_draws, theta_draws
    from nadfit.models.model import MARGINALISED

    model = evidence_model_of(pm_model)
    if model is None:
        return trace
    post = trace["posterior"].to_dataset()
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    th = theta_draws(post, model, sampled_only=True)
    rng = np.random.default_rng([int(seed), STREAM])
    for name in MARGINALISED:
        th["_u_" + name] = rng.random((chains * draws, len(model.vector_parameters[name][1])))

    def one(t):
        u = {name: t.pop("_u_" + name) for name in MARGINALISED}
        return model.recover_latents(t, u)

    drawn = map_draws(one, th)
    for name in MARGINALISED:
        dim, labels = model.vector_parameters[name]
        post[name] = xr.DataArray(drawn[name].reshape(chains, draws, len(labels)),
                                  dims=("chain", "draw", dim),
                                  coords={"chain": post["chain"], "draw": post["draw"], dim: list(labels)})
    trace["posterior"] = xr.DataTree(post)
    return trace
