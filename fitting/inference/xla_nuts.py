"""numpyro's NUTS on a PyMC model, driven from here so that the chains can continue.

PyMC's ``pm.sample(nuts_sampler="numpyro")`` builds numpyro's ``MCMC`` inside one call and
returns only the draws, so a fit that has not yet converged can only be sampled again from
scratch (warm-up included). :func:`sample_numpyro` does what that call does, step by step with
PyMC's own helpers (the same jaxified log density, jittered initial points, seeds, transforms
back to the constrained space and DataTree layout; ``tests/fitting/inference/test_xla_nuts.py``
checks that the draws are identical to ``pm.sample``'s), and then, while ``shortfall(trace)``
names a reason, lets the same chains run on after their warm-up in batches of half as many
draws (numpyro's documented continuation: ``post_warmup_state = last_state``) up to
``max_draws`` per chain.

Why: the convergence gates need a bulk ESS of 400 and R-hat <= 1.01. The hypotheses' slowest
parameters give 0.25-0.5 effective draws per draw, so 500 draws per chain pass most fits and
1000 the rest; sampling 1000 for every fit spends about a fifth of the main job on draws it
does not need, and a fit that falls short of the gates had no remedy but a full refit.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: continuation batches are this share of the first batch (500 -> 250 per chain): after 500 draws
#: the gates usually fail by little (session 13: R-hat 1.011 and 1.015 where the gate is 1.01),
#: and a smaller step stops closer to where they pass
CONTINUATION_SHARE = 0.5

#: numpyro's per-iteration statistics kept in ``sample_stats`` (as ``pm.sample`` keeps them)
EXTRA_FIELDS = ("num_steps", "potential_energy", "energy", "adapt_state.step_size", "accept_prob", "diverging")


def _seed_and_initial_points(model, chains: int, seed: int, logp_fn):
    """The sampler's seed and jittered initial points, derived from ``seed`` exactly as
    ``pm.sample(random_seed=seed, nuts_sampler="numpyro")`` derives them (``pm.sample`` spawns
    one seed per chain and hands the first to ``pymc.sampling.jax.sample_jax_nuts``)."""
    import jax
    from pymc.sampling.jax import _get_batched_jittered_initial_points
    from pymc.util import _get_seeds_per_chain, get_random_generator

    first = int(get_random_generator(seed).spawn(chains)[0].integers(2**30))
    (random_seed,) = _get_seeds_per_chain(first, 1)
    # PyMC evaluates the log density at each jittered point only to check that it is finite;
    # compiled, that check takes ~1 s with the compilation cache warm (5 s cold) instead of 3-8 s
    # op by op (session 14). The points themselves do not depend on it.
    init = _get_batched_jittered_initial_points(model=model, chains=chains, initvals=None,
                                                random_seed=random_seed, jitter=True,
                                                logp_fn=jax.jit(logp_fn))
    return random_seed, init


def flat_position(init, batched: bool):
    """The sampler's position as one vector instead of one array per value variable.

    numpyro's NUTS applies its per-step operations to every leaf of the position; PyMC hands it
    one array per value variable (30-33 here). On a Gaussian target of the same shape numpyro's
    own cost per leapfrog step was 240 us with 30 leaves and 45 us with one vector; on the
    production posteriors, where the log density dominates, the saving is ~5 % per gradient
    (session 15, ``models/VERIFICATION.md``). The log density receives the same arrays, but the
    compiled program differs, so draws can differ from the per-variable layout's in the last
    digits (6e-8 relative on the test's toy model); the production fits kept their chains.

    ``init``: PyMC's initial points, one array per value variable, with a leading chain axis
    when ``batched``. Returns (initial vector(s), ``unravel`` of one vector, ``unravel_draws``
    of ``(chain, draw, n)`` draws into one numpy array per variable, ``(chain, draw, *shape)``)."""
    import jax
    from jax.flatten_util import ravel_pytree

    one = [a[0] for a in init] if batched else list(init)
    x0, unravel = ravel_pytree(one)
    if batched:
        x0 = jax.vmap(lambda point: ravel_pytree(point)[0])(list(init))

    def unravel_draws(draws):
        return [np.asarray(a) for a in jax.vmap(jax.vmap(unravel))(draws)]

    return x0, unravel, unravel_draws


def continuation_draws(draws: int) -> int:
    """Draws per chain in each continuation batch after a first batch of ``draws``."""
    return max(1, int(round(draws * CONTINUATION_SHARE)))


def _concat(batches: list, axis: int = 1):
    if len(batches) == 1:
        return batches[0]
    if isinstance(batches[0], dict):
        return {k: np.concatenate([np.asarray(b[k]) for b in batches], axis=axis) for k in batches[0]}
    return [np.concatenate([np.asarray(b[i]) for b in batches], axis=axis) for i in range(len(batches[0]))]


def to_datatree(model, raw: list, stats: dict, var_names=None, attrs: dict | None = None):
    """The DataTree ``pm.sample`` returns (posterior in the constrained space with the
    deterministics, sample_stats, observed/constant data), from raw numpyro draws
    (one array per value variable, shape (chain, draw, ...)). ``var_names``: only these
    posterior variables (a cheap partial trace, e.g. for a convergence check)."""
    import jax.numpy as jnp
    import numpyro
    from arviz_base import from_dict, make_attrs
    from pymc.backends.arviz import coords_and_dims_for_inferencedata, find_constants, find_observations
    from pymc.sampling.jax import _postprocess_samples, get_jaxified_graph
    from pymc.util import get_default_varnames

    wanted = [v for v in model.unobserved_value_vars if var_names is None or v.name in var_names]
    out_vars = list(get_default_varnames(wanted, include_transformed=False))
    jax_fn = get_jaxified_graph(inputs=model.value_vars, outputs=out_vars)
    result = _postprocess_samples(jax_fn, [jnp.asarray(x) for x in raw], postprocessing_vectorize="vmap")
    groups = {"posterior": {v.name: np.asarray(r) for v, r in zip(out_vars, result)},
              "sample_stats": stats}
    if var_names is None:
        observed = find_observations(model)
        if observed is not None:
            groups["observed_data"] = observed
        constant = find_constants(model)
        if constant is not None:
            groups["constant_data"] = constant
    coords, dims = coords_and_dims_for_inferencedata(model)
    return from_dict(data=groups, coords=coords, dims=dims, sample_dims=["chain", "draw"],
                     attrs={"posterior": make_attrs(attrs or {}, inference_library=numpyro)})


def _divergences(stats: list) -> int:
    return int(sum(np.asarray(s["diverging"]).sum() for s in stats))


def smaller_step(state, factor: float):
    """numpyro's sampler state (after the warm-up) with the adapted step size times ``factor``
    (per chain; the mass matrix and the position are kept)."""
    adapt = state.adapt_state
    return state._replace(adapt_state=adapt._replace(step_size=adapt.step_size * factor))


def sample_numpyro(model, *, draws: int, tune: int, chains: int, seed: int, target_accept: float,
                   dense_mass: bool = False, chain_method: str = "parallel", progress_bar: bool = False,
                   max_draws: int | None = None, shortfall: Callable | None = None,
                   on_batch: Callable | None = None, redraw_step_factor: float | None = None,
                   on_redraw: Callable | None = None):
    """NUTS (numpyro, Stan's windowed adaptation) on the PyMC ``model``: ``tune`` warm-up
    iterations and ``draws`` draws per chain; then, while ``shortfall(trace_so_far)`` gives a
    reason (a string; None = enough) and a batch more stays within ``max_draws`` per chain,
    batches of ``draws`` x :data:`CONTINUATION_SHARE` draws per chain from where each chain
    stopped (same step size and mass matrix).
    ``shortfall`` receives the trace so far with sample_stats and only the posterior variables
    named in ``shortfall.var_names`` (all when absent). ``on_batch(kept, more, reason)`` is
    called before each continuation.

    ``redraw_step_factor``: when the first ``draws`` draws hold divergent transitions, they are
    discarded and the chains draw ``draws`` again from where they stopped, with the adapted step
    size times this factor and the same mass matrix, no new warm-up (a NUTS kernel with a fixed
    step size and mass matrix leaves the posterior invariant: the adaptation only chooses them).
    ``on_redraw(divergences, factor)`` is called first. A divergence in the new draws is kept
    (the caller's retry at a higher target_accept deals with it). The trace's posterior attrs
    record ``redraws`` (0 or 1) and ``divergences_discarded``.

    Returns (DataTree like ``pm.sample``'s, number of batches run)."""
    import time

    import jax
    from numpyro.infer import MCMC, NUTS
    from pymc.sampling.jax import _numpyro_stats_to_dict, get_jaxified_logp

    logp_fn = get_jaxified_logp(model, negative_logp=False)
    random_seed, init = _seed_and_initial_points(model, chains, seed, logp_fn)
    x0, unravel, unravel_draws = flat_position(init, batched=chains > 1)
    kernel = NUTS(potential_fn=lambda x: logp_fn(unravel(x)), target_accept_prob=target_accept,
                  adapt_step_size=True, adapt_mass_matrix=True, dense_mass=dense_mass)
    mcmc = MCMC(kernel, num_warmup=tune, num_samples=draws, num_chains=chains, postprocess_fn=None,
                chain_method=chain_method, progress_bar=progress_bar)
    key = jax.random.PRNGKey(random_seed)
    if chains > 1:
        key = jax.random.split(key, chains)
    t0 = time.time()
    mcmc.run(key, init_params=x0, extra_fields=EXTRA_FIELDS)
    raw = [unravel_draws(mcmc.get_samples(group_by_chain=True))]
    stats = [_numpyro_stats_to_dict(mcmc)]
    redraws, discarded = 0, _divergences(stats)
    if redraw_step_factor is not None and discarded > 0:
        if on_redraw is not None:
            on_redraw(discarded, redraw_step_factor)
        mcmc.post_warmup_state = smaller_step(mcmc.last_state, redraw_step_factor)
        mcmc.num_samples = draws
        mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=EXTRA_FIELDS)
        raw = [unravel_draws(mcmc.get_samples(group_by_chain=True))]
        stats = [_numpyro_stats_to_dict(mcmc)]
        redraws = 1
    cap = draws if max_draws is None else max(int(max_draws), draws)
    step = continuation_draws(draws)
    kept = draws
    names = getattr(shortfall, "var_names", None)
    while shortfall is not None and kept + step <= cap:
        reason = shortfall(to_datatree(model, _concat(raw), _concat(stats), var_names=names))
        if reason is None:
            break
        if on_batch is not None:
            on_batch(kept, step, reason)
        mcmc.post_warmup_state = mcmc.last_state
        mcmc.num_samples = step  # read by every run: the continuation's length
        mcmc.run(mcmc.post_warmup_state.rng_key, extra_fields=EXTRA_FIELDS)
        raw.append(unravel_draws(mcmc.get_samples(group_by_chain=True)))
        stats.append(_numpyro_stats_to_dict(mcmc))
        kept += step
    elapsed = time.time() - t0
    trace = to_datatree(model, _concat(raw), _concat(stats),
                        attrs={"sampling_time": elapsed, "tuning_steps": tune, "redraws": redraws,
                               "divergences_discarded": discarded if redraws else 0})
    return trace, len(raw)
