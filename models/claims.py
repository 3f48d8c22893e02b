"""Claims and studies: every published claim enters the likelihood once, at its true strength.

An evidence *row* is one number or statement as printed; a *claim* is one published finding,
possibly spread over several rows (a mean and its p-value, six p-values from one trial, two
bounds of one range, a conclusion restated in two sentences). ``models/evidence_map.yaml``
declares claims in its ``claims`` section; a scored row outside every declared claim is a claim
of its own. A *study* is the set of claims made by one paper (``claims.<id>.study`` or the rows'
``study_id``).

How a claim is scored (its ``joint`` rule, one implementation each, registered in ``JOINT``):

* ``product`` — the rows are conditionally independent given the parameters (two bounds of one
  range, separate experiments stated together): the claim's log-likelihood is the sum of the
  rows' terms (each row's term from ``models/kinds.py``).
* ``restated`` — the rows restate one finding: the claim is scored once, by its first row; the
  other rows are carried for provenance.
* ``t_vs_placebo_joint`` — censored two-sample t statistics of several arms and visits that share
  a placebo arm and the same people across visits: the probability that *all* reported tests
  reached their threshold, under the multivariate normal approximation of the test statistics.
  Covariances follow from the design: arms are independent; two visits of one arm share people
  (correlation ``visit_correlation`` of a person's measurement between visits; the later visit's
  sample is taken as a subset of the earlier one's); tests of different arms share the placebo
  mean. The orthant probability is computed with Genz's separation-of-variables algorithm on a
  fixed randomised quasi-Monte Carlo point set (smooth in the parameters, so HMC can use it).
  Rows of other kinds in the claim are added as in ``product``.
* ``mean_and_paired_t`` — a single-arm mean change and the p-value of its paired t-test, computed
  from the same people: one likelihood for (mean, SD). The reported p-value and mean give the
  sample SD ``s = |mean| sqrt(n) / t_obs``; ``mean ~ Normal(mu, sqrt(sigma_arm^2 + sigma^2/n))``
  and ``(n - 1) s^2 / sigma^2 ~ chi^2(n - 1)`` (``sigma = sigma_person``).
* ``arm_visits_mvn`` — arm-mean changes of one arm at several visits (the same people):
  multivariate normal with the person-level covariance ``sigma_person^2 * rho * min(n)/(n_i n_j)``
  between visits (``sigma_person^2 / n`` on the diagonal) plus the arm-level SD ``sigma_arm``.
* ``ratios_vs_shared_placebo`` — log ratios of several arm means to one placebo mean, with SDs
  from the reported arm SDs (delta method): bivariate/multivariate normal with the covariance of
  the shared placebo mean.

Study reliability (replaces a per-row misreport floor). Each study carries a latent indicator
"its qualitative findings do not hold, or do not transfer to the model's setting", marginalised
exactly: with prior probability ``rho`` (``ObservationSettings.unreliable_prior``; the larger
``unreliable_prior_flagged`` for a study whose ``study.yaml`` records a correction, Matters
Arising or failed replication), the study's binary claims (findings, bounds, significance
events) are reported as coin flips (probability 1/2 each)::

    log p(study) = sum(numeric claims) + logaddexp(log(1 - rho) + sum(binary claims),
                                                   log(rho) + n_binary * log(1/2))

so a study whose findings all contradict a hypothesis costs at most ``-log(rho) + n_binary log 2``
nats however many rows it was split into. Numeric claims (arm means) stay outside the mixture:
their non-transfer is carried by the human study effects (``sigma_het``, ``sigma_arm``).

Pointwise terms. ``study`` terms sum to the total log-likelihood and are the primary unit of
comparison (leave-one-study-out). ``claim`` terms are exact leave-one-claim-out conditionals:
``log p(claim | other claims of its study, theta) = log p(study) - log p(study without claim)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.stats import chi2, norm

from nadfit.datasets.errors import UserError
from nadfit.models.observation import two_sided_p
from nadfit.models.special import ndtr, ndtri

LOG_HALF = math.log(0.5)
#: quasi-Monte Carlo points of the Genz orthant integral (fixed, so the likelihood is a smooth
#: deterministic function of the parameters): scrambled Sobol' (a power of 2). Measured on the six
#: Yi 2022 bounds against 16 384 points (models/VERIFICATION.md, "Genz points"): at 200 posterior
#: draws of mixed the error of the claim's log-likelihood has SD 4e-4 nats (max 3e-3), as 256
#: Halton points did, at three quarters of the log density + gradient cost (the integral was a
#: quarter of it); in the prior's tails (claim log-likelihood down to -20) it stays below 0.04
#: nats. tests/models/test_claims.py compares it with brute-force simulation and with 16 384 points.
GENZ_POINTS = 64
GENZ_SEED = 20261130


@dataclass
class Claim:
    claim_id: str
    study_id: str
    rows: list[int]  # indices into EvidenceModel.items
    joint: str
    binary: bool
    note: str = ""
    const: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# multivariate normal upper orthant (Genz 1992), differentiable
# ---------------------------------------------------------------------------------------------


def _genz_points(d: int) -> np.ndarray:
    """(GENZ_POINTS, d) scrambled Sobol' points in (0, 1) (scipy's QMC, fixed seed)."""
    from scipy.stats import qmc

    pts = qmc.Sobol(d=max(d, 1), scramble=True, seed=GENZ_SEED).random(GENZ_POINTS)
    return np.clip(pts, 1e-12, 1 - 1e-12)


def log_upper_orthant(lower, chol, w):
    """log P(Z_corr >= lower) for Z_corr = chol @ z, z ~ N(0, I) (Genz's sequential algorithm).

    ``lower``: (d,) standardised thresholds; ``chol``: (d, d) lower Cholesky factor of the
    correlation matrix; ``w``: (m, d) fixed quasi-random points. By symmetry P(L z >= a) =
    P(L z <= -a); each coordinate's conditional upper limit gives a factor e_i = Phi(.), and
    z_i = Phi^-1(w_i e_i) continues the sequence.
    """
    b = -lower
    d = b.shape[0]

    def one(wi):
        z = jnp.zeros(d)
        logp = 0.0
        for i in range(d):
            upper = (b[i] - jnp.dot(chol[i, :i], z[:i])) / chol[i, i]
            e = jnp.clip(ndtr(upper), 1e-300, 1.0)
            logp = logp + jnp.log(e)
            z = z.at[i].set(ndtri(jnp.clip(wi[i] * e, 1e-300, 1 - 1e-16)))
        return logp

    lps = jax.vmap(one)(w)
    m = jnp.max(lps)
    return m + jnp.log(jnp.mean(jnp.exp(lps - m)))


# ---------------------------------------------------------------------------------------------
# design covariance of tests that share arms and people
# ---------------------------------------------------------------------------------------------


def _mean_cov(g1, v1, n1, g2, v2, n2, rho):
    """Cov of two sample means / sigma^2: same group, visits v1, v2 (nested samples)."""
    if g1 != g2:
        return 0.0
    if v1 == v2:
        return 1.0 / n1
    return rho * min(n1, n2) / (n1 * n2)


def statistic_correlation(tests: list[dict], rho: float) -> np.ndarray:
    """Correlation matrix of two-sample statistics ``mean(arm) - mean(placebo)``.

    ``tests``: dicts with arm, placebo (group labels), visit, n_arm, n_placebo."""
    k = len(tests)
    cov = np.zeros((k, k))
    for i, a in enumerate(tests):
        for j, b in enumerate(tests):
            c = (_mean_cov(a["arm"], a["visit"], a["n_arm"], b["arm"], b["visit"], b["n_arm"], rho)
                 - _mean_cov(a["arm"], a["visit"], a["n_arm"], b["placebo"], b["visit"], b["n_placebo"], rho)
                 - _mean_cov(a["placebo"], a["visit"], a["n_placebo"], b["arm"], b["visit"], b["n_arm"], rho)
                 + _mean_cov(a["placebo"], a["visit"], a["n_placebo"], b["placebo"], b["visit"], b["n_placebo"], rho))
            cov[i, j] = c
    sd = np.sqrt(np.diag(cov))
    return cov / np.outer(sd, sd)


# ---------------------------------------------------------------------------------------------
# joint rules
# ---------------------------------------------------------------------------------------------


def _prepare_t_joint(model, claim: Claim) -> None:
    tests, idx = [], []
    for i in claim.rows:
        it = model.items[i]
        if not it.binary:
            # the joint term scores the event "every test as reported"; a numeric row would make
            # the claim numeric (no reliability mixture, bounds simulated one by one)
            raise UserError(f"claim {claim.claim_id}: joint rule t_vs_placebo_joint takes only findings, bounds "
                            f"and significance events; {it.evidence_id} is numeric ({it.kind})",
                            file="models/evidence_map.yaml", field=claim.claim_id)
        if it.kind != "t_vs_placebo_bound":
            continue
        c = it.const
        tests.append({"arm": (it.study_id, it.spec["scenario"]), "placebo": (it.study_id, it.spec["placebo"]),
                      "visit": float(it.spec["day"]), "n_arm": c["n1"], "n_placebo": c["n2"]})
        idx.append(i)
    if not idx:
        raise UserError(f"claim {claim.claim_id}: joint rule t_vs_placebo_joint needs rows of kind "
                        "t_vs_placebo_bound", file="models/evidence_map.yaml", field=claim.claim_id)
    corr = statistic_correlation(tests, model.settings.visit_correlation)
    claim.const.update(t_rows=idx, chol=jnp.asarray(np.linalg.cholesky(corr)),
                       w=jnp.asarray(_genz_points(len(idx))), corr=corr)


def _t_joint_loglik(model, claim: Claim, qs: dict, lls: dict, th):
    c = claim.const
    ncp, t_crit, sd = [], [], []
    for i in c["t_rows"]:
        it = model.items[i]
        k = it.const
        nc = qs[i] / (th["sigma_person"] * math.sqrt(1 / k["n1"] + 1 / k["n2"]))
        ncp.append(nc)
        t_crit.append(k["t_crit"])
        sd.append(jnp.sqrt(1.0 + nc ** 2 / (2.0 * k["df"])))
    ncp, sd = jnp.stack(ncp), jnp.stack(sd)
    lower = (jnp.asarray(t_crit) - ncp) / sd
    lp = log_upper_orthant(lower, c["chol"], c["w"])
    rest = sum((lls[i] for i in claim.rows if i not in c["t_rows"]), jnp.asarray(0.0))
    return lp + rest


def _product_loglik(model, claim, qs, lls, th):
    return sum((lls[i] for i in claim.rows), jnp.asarray(0.0))


def _restated_loglik(model, claim, qs, lls, th):
    return lls[claim.rows[0]]


def _prepare_mean_paired(model, claim: Claim) -> None:
    mean_rows = [i for i in claim.rows if model.items[i].kind == "arm_mean_change"]
    t_rows = [i for i in claim.rows if model.items[i].kind == "t_paired_exact_p"]
    if len(mean_rows) != 1 or len(t_rows) != 1:
        raise UserError(f"claim {claim.claim_id}: mean_and_paired_t needs one arm-mean row and one "
                        "paired-test row", file="models/evidence_map.yaml", field=claim.claim_id)
    m, t = model.items[mean_rows[0]], model.items[t_rows[0]]
    n = t.const["n"]
    y = m.const["y"]
    s = abs(y) * math.sqrt(n) / t.const["t_obs"]
    claim.const.update(mean_row=mean_rows[0], n=n, y=y, s=s)


def _mean_paired_loglik(model, claim, qs, lls, th):
    c = claim.const
    n = c["n"]
    sigma = th["sigma_person"]
    sd_mean = jnp.sqrt(th["sigma_arm"] ** 2 + sigma ** 2 / n)
    lp_mean = norm.logpdf(c["y"], qs[c["mean_row"]], sd_mean)
    x = (n - 1) * c["s"] ** 2 / sigma ** 2
    # density of s: chi2(x; n-1) |dx/ds|, dx/ds = 2 (n-1) s / sigma^2
    lp_sd = chi2.logpdf(x, n - 1) + jnp.log(2.0 * (n - 1) * c["s"] / sigma ** 2)
    return lp_mean + lp_sd


def _prepare_ratios(model, claim: Claim) -> None:
    rows = [i for i in claim.rows if model.items[i].kind == "log_ratio_vs_placebo"]
    if not rows or len(rows) != len(claim.rows):
        raise UserError(f"claim {claim.claim_id}: ratios_vs_shared_placebo needs rows of kind "
                        "log_ratio_vs_placebo only", file="models/evidence_map.yaml", field=claim.claim_id)
    placebo = {model.items[i].const["placebo_key"] for i in rows}
    if len(placebo) != 1:
        raise UserError(f"claim {claim.claim_id}: the ratios do not share one placebo arm",
                        file="models/evidence_map.yaml", field=claim.claim_id)
    its = [model.items[i] for i in rows]
    var_p = its[0].const["var_placebo"]
    cov = np.full((len(rows), len(rows)), var_p)
    for k, it in enumerate(its):
        cov[k, k] = it.const["var_arm"] + var_p
    widen = its[0].const["widen"] ** 2
    claim.const.update(cov=jnp.asarray(cov * widen), y=jnp.asarray([it.const["y"] for it in its]))


def _ratios_loglik(model, claim, qs, lls, th):
    c = claim.const
    mu = jnp.stack([qs[i] for i in claim.rows])
    cov = c["cov"] + th["sigma_arm"] ** 2 * jnp.eye(len(claim.rows))
    return jax.scipy.stats.multivariate_normal.logpdf(c["y"], mu, cov)


def _prepare_arm_visits(model, claim: Claim) -> None:
    its = [model.items[i] for i in claim.rows]
    if any(it.kind != "arm_mean_change" for it in its) or any(not it.const.get("n") for it in its):
        raise UserError(f"claim {claim.claim_id}: arm_visits_mvn needs arm-mean rows with n",
                        file="models/evidence_map.yaml", field=claim.claim_id)
    rho = model.settings.visit_correlation
    k = len(its)
    c = np.zeros((k, k))
    for a, ia in enumerate(its):
        for b, ib in enumerate(its):
            c[a, b] = _mean_cov("arm", float(ia.spec["day"]), ia.const["n"], "arm", float(ib.spec["day"]),
                                ib.const["n"], rho)
    widen = np.array([it.widen for it in its])
    claim.const.update(person_cov=jnp.asarray(c * np.outer(widen, widen)), widen=jnp.asarray(widen),
                       y=jnp.asarray([it.const["y"] for it in its]))


def _arm_visits_loglik(model, claim, qs, lls, th):
    c = claim.const
    mu = jnp.stack([qs[i] for i in claim.rows])
    cov = th["sigma_person"] ** 2 * c["person_cov"] + jnp.diag((c["widen"] * th["sigma_arm"]) ** 2)
    return jax.scipy.stats.multivariate_normal.logpdf(c["y"], mu, cov)


@dataclass(frozen=True)
class JointRule:
    name: str
    prepare: object
    loglik: object
    binary: bool | None  # None: binary iff every row is binary
    partial_ok: bool = True  # still applies when some of the claim's rows are excluded
    # for a partial claim: whether the rule applies to the rows left (None: always)
    applies: object = None


def _nothing(model, claim) -> None:
    return None


JOINT: dict[str, JointRule] = {r.name: r for r in (
    JointRule("product", _nothing, _product_loglik, None),
    JointRule("restated", _nothing, _restated_loglik, None),
    JointRule("t_vs_placebo_joint", _prepare_t_joint, _t_joint_loglik, None,
              applies=lambda model, rows: any(model.items[i].kind == "t_vs_placebo_bound" for i in rows)),
    JointRule("mean_and_paired_t", _prepare_mean_paired, _mean_paired_loglik, False, partial_ok=False),
    JointRule("ratios_vs_shared_placebo", _prepare_ratios, _ratios_loglik, False),
    JointRule("arm_visits_mvn", _prepare_arm_visits, _arm_visits_loglik, False),
)}


# ---------------------------------------------------------------------------------------------
# building claims and studies
# ---------------------------------------------------------------------------------------------


def build_claims(model, declared: dict) -> list[Claim]:
    """Claims of ``model.items`` from the evidence map's ``claims`` section (rows not declared
    form claims of their own). A declared claim whose rows are all absent (excluded) is dropped;
    a partly present one keeps its present rows."""
    index = {it.evidence_id: i for i, it in enumerate(model.items)}
    seen: dict[str, str] = {}
    claims: list[Claim] = []
    for cid, spec in (declared or {}).items():
        rows = spec.get("rows") or []
        for eid in rows:
            if eid in seen:
                raise UserError(f"row {eid} is in two claims ({seen[eid]}, {cid})",
                                file="models/evidence_map.yaml", field=cid)
            seen[eid] = cid
        present = [index[e] for e in rows if e in index]
        if not present:
            continue
        joint = spec.get("joint", "product")
        if joint not in JOINT:
            raise UserError(f"claim {cid}: unknown joint rule {joint!r} (known: {', '.join(JOINT)})",
                            file="models/evidence_map.yaml", field=cid)
        rule = JOINT[joint]
        if len(present) < len(rows) and (not rule.partial_ok or (rule.applies and not rule.applies(model, present))):
            # this joint rule needs all its rows, or none of the kind it combines is left (Yi 2022's
            # post-hoc finding without the study's test rows): the partial claim is scored row by row
            joint = "product"
        studies = {model.items[i].study_id for i in present}
        study = spec.get("study") or (studies.pop() if len(studies) == 1 else None)
        if study is None:
            raise UserError(f"claim {cid}: rows from several studies need an explicit 'study'",
                            file="models/evidence_map.yaml", field=cid)
        claims.append(Claim(cid, study, present, joint, False, str(spec.get("note", ""))))
    for eid, i in index.items():
        if eid not in seen:
            claims.append(Claim(eid, model.items[i].study_id, [i], "product", False))
    claims.sort(key=lambda c: min(c.rows))
    for c in claims:
        rule = JOINT[c.joint]
        c.binary = rule.binary if rule.binary is not None else all(model.items[i].binary for i in c.rows)
        rule.prepare(model, c)
    return claims


def claim_loglik(model, claim: Claim, qs: dict, lls: dict, th):
    return JOINT[claim.joint].loglik(model, claim, qs, lls, th)


def study_terms(claims: list[Claim], claim_ll: list, rho: dict[str, float]):
    """(study ids, study log-likelihoods, leave-one-claim-out conditional claim terms).

    ``claim_ll``: each claim's log-likelihood given a reliable study (scalars, or arrays over
    posterior draws of one shape); the outputs stack units along the last axis. Exact for any
    ``rho``, so stored per-claim terms give the terms under another reliability prior without
    re-evaluating the model (comparison sensitivity grid)."""
    studies: dict[str, list[int]] = {}
    for k, c in enumerate(claims):
        studies.setdefault(c.study_id, []).append(k)
    study_ids = list(studies)
    study_ll = []
    cond = [None] * len(claims)
    for s in study_ids:
        ks = studies[s]
        num = [k for k in ks if not claims[k].binary]
        binary = [k for k in ks if claims[k].binary]
        numeric_sum = sum((claim_ll[k] for k in num), jnp.asarray(0.0))
        mixed = _mixture(claim_ll, binary, rho[s])[1]
        study_ll.append(numeric_sum + mixed)
        for k in num:
            cond[k] = claim_ll[k]
        for k in binary:
            cond[k] = mixed - _mixture(claim_ll, [b for b in binary if b != k], rho[s])[1]
    return study_ids, jnp.stack(study_ll, axis=-1), jnp.stack(cond, axis=-1)


def _mixture(claim_ll, binary: list[int], r: float):
    """(reliable branch, mixture) of a study's binary claims ``binary`` (log scale)."""
    if not binary:
        return jnp.asarray(0.0), jnp.asarray(0.0)
    reliable = math.log1p(-r) + sum((claim_ll[k] for k in binary), jnp.asarray(0.0))
    return reliable, jnp.logaddexp(reliable, math.log(r) + len(binary) * LOG_HALF)


def log_p_reliable(claims: list[Claim], claim_ll, rho: dict[str, float], k: int):
    """log posterior probability, given the parameters, that the study of claim ``k`` is reliable
    (0 for a numeric claim: it is outside the mixture)."""
    if not claims[k].binary:
        return jnp.asarray(0.0)
    study = claims[k].study_id
    binary = [j for j, c in enumerate(claims) if c.study_id == study and c.binary]
    reliable, mixed = _mixture(claim_ll, binary, rho[study])
    return reliable - mixed


#: ObservationSettings fields that act only through the study mixture (see :func:`study_terms`)
RELIABILITY_FIELDS = ("unreliable_prior", "unreliable_prior_flagged")


def undeclared_duplicates(model, thetas: list[dict], tol: float = 1e-9) -> list[tuple[str, str]]:
    """Pairs of scored rows of one study and one system that give the same model quantity at
    every parameter set in ``thetas`` but sit in different claims (a claim scored twice).

    Rows of different studies measuring one quantity are replications and are allowed."""
    claim_of = {}
    for c in model.claims:
        for i in c.rows:
            claim_of[i] = c.claim_id
    preds = [np.asarray(model.terms(th)["pred"], dtype=float) for th in thetas]
    out = []
    n = len(model.items)
    for a in range(n):
        for b in range(a + 1, n):
            ia, ib = model.items[a], model.items[b]
            if claim_of[a] == claim_of[b] or ia.study_id != ib.study_id:
                continue
            if ia.spec.get("system") != ib.spec.get("system"):
                continue
            if all(abs(p[a] - p[b]) <= tol * max(1.0, abs(p[a])) for p in preds):
                out.append((ia.evidence_id, ib.evidence_id))
    return out


# ---------------------------------------------------------------------------------------------
# simulation of numeric joint claims (the same joint model the likelihood scores)
# ---------------------------------------------------------------------------------------------


def simulate_claim(model, claim: Claim, qs, th, rng) -> dict | None:
    """Reported results of a numeric claim drawn jointly, or None when its rows are independent
    given the parameters (``product``; ``restated`` draws the first row and repeats it)."""
    items = [model.items[i] for i in claim.rows]
    f = lambda x: float(np.asarray(x).reshape(-1)[0])  # noqa: E731
    if claim.joint == "arm_visits_mvn":
        c = claim.const
        mu = np.array([f(qs[i]) for i in claim.rows])
        cov = float(th["sigma_person"]) ** 2 * np.asarray(c["person_cov"]) + np.diag(
            (np.asarray(c["widen"]) * float(th["sigma_arm"])) ** 2)
        y = rng.multivariate_normal(mu, cov)
        return {it.evidence_id: 100.0 * math.expm1(v) for it, v in zip(items, y)}
    if claim.joint == "ratios_vs_shared_placebo":
        c = claim.const
        mu = np.array([f(qs[i]) for i in claim.rows])
        cov = np.asarray(c["cov"]) + float(th["sigma_arm"]) ** 2 * np.eye(len(items))
        y = rng.multivariate_normal(mu, cov)
        return {it.evidence_id: it.const["placebo_mean"] * math.exp(v) for it, v in zip(items, y)}
    if claim.joint == "mean_and_paired_t":
        c = claim.const
        n = c["n"]
        sigma = float(th["sigma_person"])
        sd_mean = math.sqrt(float(th["sigma_arm"]) ** 2 + sigma ** 2 / n)
        y = f(qs[c["mean_row"]]) + sd_mean * rng.standard_normal()
        s = sigma * math.sqrt(rng.chisquare(n - 1) / (n - 1))
        t = abs(y) * math.sqrt(n) / s
        mean_it = model.items[c["mean_row"]]
        t_it = next(it for it in items if it is not mean_it)
        return {mean_it.evidence_id: 100.0 * math.expm1(y), t_it.evidence_id: two_sided_p(t, n - 1)}
    if claim.joint == "restated" and len(items) > 1 and not items[0].binary:
        from nadfit.models.kinds import KINDS

        v = KINDS[items[0].kind].simulate(model, items[0], f(qs[claim.rows[0]]), th, rng)
        return {it.evidence_id: v for it in items}
    return None
