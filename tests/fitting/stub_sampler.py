"""A stand-in for nutpie: prior draws shaped as the posterior nutpie returns.

Used where a test must run a command's whole code path (model build, run folder, comparison,
reports) but not NUTS itself, which other tests exercise. Deterministics (``loglik_item``,
``model_quantity``) are evaluated at the drawn values, so every later step sees real numbers; the marginalised latents are then
drawn as after real sampling (``inference.latents``).
"""

from __future__ import annotations

import numpy as np


def prior_as_posterior(pm_model, cfg, *_args, **_kwargs):
    import pymc as pm
    import xarray as xr

    rvs = list(pm_model.free_RVs) + list(pm_model.deterministics)
    n = cfg.chains * cfg.draws
    values = pm.draw(rvs, draws=n, random_seed=cfg.seed, mode="FAST_COMPILE")
    data = {}
    for rv, v in zip(rvs, values, strict=True):
        dims = pm_model.named_vars_to_dims.get(rv.name, ())
        v = np.asarray(v).reshape((cfg.chains, cfg.draws) + np.shape(v)[1:])
        data[rv.name] = (("chain", "draw") + tuple(dims), v)
    coords = {k: list(v) for k, v in pm_model.coords.items()}
    post = xr.Dataset(data, coords={"chain": np.arange(cfg.chains), "draw": np.arange(cfg.draws), **coords})
    shape = (cfg.chains, cfg.draws)
    stats = xr.Dataset({"diverging": (("chain", "draw"), np.zeros(shape, bool)),
                        "energy": (("chain", "draw"), np.random.default_rng(cfg.seed).normal(size=shape))})
    from nadfit.fitting.inference.latents import with_latents

    # as inference.fit.sample_posterior: the marginalised latents drawn after "sampling"
    return with_latents(xr.DataTree.from_dict({"posterior": post, "sample_stats": stats}), pm_model, cfg.seed)
