"""The marginalised latents (models/latent.py): z_w73 integrated out of the log density on a grid,
and drawn back from its posterior given the other parameters.

Checked against independent computations: adaptive quadrature of the claim's probability over
the N(0, 1) prior, the exact conditional CDF (quadrature, mixed with the study's reliability
probability from the study term), finite differences of the integrated term, and the rule that
finds the rows a latent enters (every other row must not depend on it)."""

from __future__ import annotations

import copy
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from nadfit.datasets.errors import UserError
from nadfit.models import latent
from nadfit.models.model import MARGINALISED, EvidenceModel, load_evidence_map
from nadfit.models.settings import ObservationSettings

HYPS = ("direct", "via-nr", "mixed")


def _claim_probability_at(m, ci, th, z):
    """P(claim | theta, z) evaluated row by row without the grid (conditional model; jitted)."""
    key = (id(m), ci)
    if key not in _JITTED:
        name, element = m.latent_claims[ci]
        c = m.claims[ci]

        def f(th, z):
            t = dict(th)
            t[name] = jnp.zeros(len(m.vector_parameters[name][1])).at[element].set(z)
            cache: dict = {}
            qs, held, lls = {}, {}, {}
            for r in c.rows:
                qs[r] = m.quantity(m.items[r], t, cache)
                held[r], lls[r], _ = m._row_terms(m.items[r], qs[r], t, c.binary)
            return jnp.exp(m._claim_ll(c, qs, held, lls, t))

        _JITTED[key] = jax.jit(f)
    return float(_JITTED[key](th, z))


_JITTED: dict = {}


def _draws(m, n, seed):
    rng = np.random.default_rng(seed)
    return [{k: jnp.asarray(v) for k, v in m.prior_draw(rng).items()} for _ in range(n)]


CD73_ROWS = ["EV180", "EV182", "EV184"]


@pytest.mark.parametrize("hyp,tau", [(h, 0.1) for h in HYPS] + [("via-nr", 0.05)])
def test_grid_integral_matches_adaptive_quadrature(models, evidence, hyp, tau):
    """claim_raw of each z_w73 claim = log of the prior expectation of the claim's probability
    (the grid's spacing follows the findings' tolerance tau)."""
    assert {models[hyp].claims[ci].claim_id for ci in models[hyp].latent_claims} == set(CD73_ROWS)
    m = EvidenceModel(hyp, evidence, mapping=_only(CD73_ROWS), settings=ObservationSettings(tau=tau))
    terms = jax.jit(m.terms)
    for th in _draws(m, 4, seed=11):
        raw = np.asarray(terms(th)["claim_raw"])
        for ci in m.latent_claims:
            val, _ = integrate.quad(lambda z: _claim_probability_at(m, ci, th, z) * stats.norm.pdf(z),
                                    -9.0, 9.0, limit=400, epsabs=1e-14, epsrel=1e-12)
            assert raw[ci] == pytest.approx(math.log(val), abs=1e-5)


def test_terms_do_not_depend_on_the_latents_in_theta(evidence):
    m = EvidenceModel("via-nr", evidence, mapping=_only(CD73_ROWS))
    th = _draws(m, 1, seed=2)[0]
    a = m.terms({**th, "z_w73": jnp.asarray([-2.0, 0.3, 1.9])})
    b = m.terms({k: v for k, v in th.items() if k not in MARGINALISED})
    for key in ("study", "claim", "claim_raw", "item", "pred"):
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))


def test_only_the_found_rows_depend_on_the_latents(models):
    """The rule that finds a latent's rows (observable and perturbation) misses none: changing
    z_w73 changes no other row's model quantity."""
    for hyp in HYPS:
        m = models[hyp]
        for th in _draws(m, 3, seed=5):
            base, moved = dict(th), dict(th)
            base["z_w73"] = jnp.asarray([-1.5, -1.5, -1.5])
            moved["z_w73"] = jnp.asarray([1.5, 1.5, 1.5])
            ca, cb = {}, {}
            for k, it in enumerate(m.items):
                if k in m._latent_rows:
                    continue
                qa, qb = m.quantity(it, base, ca), m.quantity(it, moved, cb)
                np.testing.assert_array_equal(np.asarray(qa), np.asarray(qb), err_msg=it.evidence_id)
        # and the found rows do depend on it under a hypothesis with an NR route
    m = EvidenceModel("via-nr", models["via-nr"].evidence, mapping=_only(CD73_ROWS))
    th = _draws(m, 1, seed=6)[0]
    ci = next(ci for ci in m.latent_claims if m.claims[ci].claim_id == "EV182")
    assert _claim_probability_at(m, ci, th, -2.0) != pytest.approx(_claim_probability_at(m, ci, th, 2.0))


def _conditional_cdf(m, ci, th, r, edges):
    """Exact F(z | theta, y) = r * int_-inf^z L phi / int L phi + (1 - r) Phi(z) at ``edges``."""
    f = lambda x: _claim_probability_at(m, ci, th, x) * stats.norm.pdf(x)  # noqa: E731
    parts = [integrate.quad(f, a, b, limit=200, epsabs=1e-14)[0] for a, b in zip([-9.0, *edges], [*edges, 9.0])]
    num = np.cumsum(parts)[:-1]
    return r * num / sum(parts) + (1.0 - r) * stats.norm.cdf(edges)


def _chi2_pvalue(z, edges, cdf):
    counts = np.bincount(np.searchsorted(edges, z), minlength=len(edges) + 1)
    probs = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
    return stats.chisquare(counts, probs * len(z)).pvalue


def test_recovered_draws_follow_the_exact_conditional_posterior(evidence):
    """Draws of z_w73[sociali2016] given theta: chi-square test (24 bins) against the exact
    conditional distribution, which mixes the claim's posterior and the prior by the probability
    that the study holds (from the study term: r = exp(log(1 - rho) + claim term - study term)).
    The same draws reject the distribution without that mixing."""
    m = EvidenceModel("via-nr", evidence, mapping=_only(["EV182"]))
    # knockdowns leave 5 %: the NRK1 silencing abolishes NMN use, the CD73 one only if its share
    # is above ~0.8 (z above ~0.8)
    th = {**m.prior_median_theta(), "r_kd": jnp.asarray(0.05), "q_nrk": jnp.asarray(0.5)}
    t = m.terms(th)
    ci = 0
    rho = m.unreliable_prior["sociali2016"]
    r = math.exp(math.log1p(-rho) + float(t["claim_raw"][ci]) - float(t["study"][0]))
    assert 0.05 < r < 0.95  # both branches matter at this theta
    u = np.random.default_rng(7).random(8000)
    w = t["latent_weights"]["z_w73"][1]
    z = np.asarray(m.latent_grid.draw(jnp.broadcast_to(w, (u.size, w.size)), jnp.asarray(u)))
    edges = np.linspace(-2.5, 3.0, 23)
    assert _chi2_pvalue(z, edges, _conditional_cdf(m, ci, th, r, edges)) > 1e-3
    assert _chi2_pvalue(z, edges, _conditional_cdf(m, ci, th, 1.0, edges)) < 1e-6
    # the draws after sampling compute the same weights from the CD73 studies alone
    np.testing.assert_allclose(np.asarray(m.latent_weights(th)["z_w73"]), np.asarray(t["latent_weights"]["z_w73"]),
                               rtol=1e-12, atol=1e-300)
    full = EvidenceModel("via-nr", evidence)
    th_full = {**full.prior_median_theta(), "r_kd": jnp.asarray(0.05), "q_nrk": jnp.asarray(0.5)}
    np.testing.assert_allclose(np.asarray(full.latent_weights(th_full)["z_w73"]),
                               np.asarray(full.terms(th_full)["latent_weights"]["z_w73"]), rtol=1e-10, atol=1e-300)
    # recover_latents draws the same from the same uniforms
    got = m.recover_latents(th, {"z_w73": jnp.asarray([0.5, u[0], 0.5])})["z_w73"]
    assert float(got[1]) == pytest.approx(float(z[0]), abs=1e-12)
    # elements whose claims are not in the evidence are drawn from the prior (the median here)
    assert float(got[0]) == pytest.approx(0.0, abs=m.latent_grid.spacing)


def test_integrated_term_gradient_matches_finite_differences(evidence):
    m = EvidenceModel("via-nr", evidence, mapping=_only(CD73_ROWS))
    th = _draws(m, 1, seed=9)[0]
    names = ("r_kd", "q_nrk", "r_ko")
    f = jax.jit(lambda x: jnp.sum(m.terms({**th, **dict(zip(names, x))})["study"]))
    x0 = jnp.asarray([float(th[n]) for n in names])
    g = np.asarray(jax.grad(f)(x0))
    for i in range(len(names)):
        h = 1e-6 * max(1.0, abs(float(x0[i])))
        e = jnp.zeros(len(names)).at[i].set(h)
        fd = (float(f(x0 + e)) - float(f(x0 - e))) / (2 * h)
        assert g[i] == pytest.approx(fd, rel=1e-5, abs=1e-7), names[i]


def _only(ids, claims=None):
    full = load_evidence_map()
    return {"likelihood": {e: copy.deepcopy(full["likelihood"][e]) for e in ids}, "claims": claims or {}}


def test_a_latent_in_two_claims_is_refused(evidence):
    import pandas as pd

    row = evidence[evidence["evidence_id"] == "EV182"].copy()
    row["evidence_id"] = "EV900"
    ev = pd.concat([evidence, row], ignore_index=True)
    mapping = _only(["EV182"])
    mapping["likelihood"]["EV900"] = copy.deepcopy(mapping["likelihood"]["EV182"])
    with pytest.raises(UserError, match=r"z_w73\[sociali2016\] enters two claims"):
        EvidenceModel("via-nr", ev, mapping=mapping)
    # declared as one claim, it is integrated jointly
    mapping["claims"] = {"both": {"rows": ["EV182", "EV900"]}}
    m = EvidenceModel("via-nr", ev, mapping=mapping)
    assert list(m.latent_claims.values()) == [("z_w73", 1)]


def test_draw_inverts_the_grid_cdf():
    grid = latent.Grid.for_tolerance(0.1)
    assert len(grid.z) == 131
    w = jnp.asarray(grid.prior_weights)
    u = np.random.default_rng(1).random(20000)
    z = np.asarray(grid.draw(jnp.broadcast_to(w, (u.size, w.size)), jnp.asarray(u)))
    assert stats.kstest(z, stats.norm.cdf).pvalue > 1e-3
    assert stats.kstest(z + 0.05, stats.norm.cdf).pvalue < 1e-6
