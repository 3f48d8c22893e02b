"""A model's pointwise log-likelihood at posterior draws (JAX, jitted and vmapped over the draws).

Used by the comparison: importance reweighting to other observation settings
(``comparison.robustness``) and scoring left-out units on exact refits (``comparison.refits``,
``comparison.assemble.exact_refit_elpd``).
"""

from __future__ import annotations

import numpy as np

#: draws per jitted batch (bounded memory; the last batch is padded to keep one compiled shape)
BATCH = 500


def theta_draws(post, model, sampled_only: bool = False) -> dict:
    """Posterior draws as the model's parameter dict, draws flattened: name -> (S, ...) array
    (``sampled_only``: without the marginalised latents, which are drawn after sampling)."""
    vectors = model.sampled_vector_parameters if sampled_only else model.vector_parameters
    names = list(model.scalar_parameters) + list(vectors)
    out = {}
    for k in names:
        v = post[k].transpose("chain", "draw", ...).values
        out[k] = v.reshape(-1, *v.shape[2:])
    return out


def pointwise_draws(model, th: dict, batch: int = BATCH) -> dict[str, np.ndarray]:
    """``model.pointwise`` at every draw: variable -> (S, units), jitted and vmapped in batches."""
    return map_draws(model.pointwise, th, batch)


def map_draws(f, th: dict, batch: int = BATCH) -> dict[str, np.ndarray]:
    """``f(theta) -> dict of arrays`` at every draw of ``th`` (name -> (S, ...)): jitted and
    vmapped in batches; returns name -> (S, ...) numpy arrays."""
    import jax
    import jax.numpy as jnp

    fn = jax.jit(jax.vmap(f))
    s = len(next(iter(th.values())))
    size = min(batch, s)
    parts: dict[str, list] = {}
    for start in range(0, s, size):
        idx = np.minimum(np.arange(start, start + size), s - 1)
        res = fn({k: jnp.asarray(v[idx]) for k, v in th.items()})
        keep = min(size, s - start)
        for var, arr in res.items():
            parts.setdefault(var, []).append(np.asarray(arr)[:keep])
    return {var: np.concatenate(p, axis=0) for var, p in parts.items()}
