"""Registry of observation kinds: how one kind of reported statistic is precomputed, scored and
simulated — declared together, in one place.

An evidence row that ``models/evidence_map.yaml`` scores has an *observable* (the model quantity it
measures, computed by ``EvidenceModel.quantity``) and a *kind* (what the reported number means as a
likelihood: an arm mean, a censored test statistic, a qualitative finding, ...). Each kind is one
:class:`ObservationKind` below with

* ``precompute(model, item, row)``: constants from the evidence table (n, critical values, logs),
* ``loglik(model, item, q, th)``: ``log p(reported result | model quantity q, theta)``,
* ``simulate(model, item, q, th, rng)``: a reported result drawn from that likelihood (calibration),
* ``binary``: whether the reported result is an event that held or not (a finding, a bound).

Adding a kind of evidence means adding one entry here (and its rule in :func:`kind_of`). The
statistics themselves are documented in :mod:`nadfit.models.observation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import jax.numpy as jnp

from nadfit.datasets.errors import UserError
from nadfit.models.observation import (
    cv_relative_se,
    log_bound,
    log_direction,
    log_normal_obs,
    log_p_upper_bound,
    log_t_observed,
    t_from_two_sided_p,
    two_sided_p,
)

TIME_UNIT_DAYS = {"week": 7.0, "day": 1.0, "weeks": 7.0, "days": 1.0}


@dataclass(frozen=True)
class ObservationKind:
    name: str
    binary: bool
    precompute: Callable
    loglik: Callable
    simulate: Callable | None = None


def _nothing(model, it, row) -> None:
    return None


def _simulate_event(model, it, q, th, rng) -> bool:
    """A binary result: the reported event held with the modelled probability."""
    lp = float(jnp.sum(KINDS[it.kind].loglik(model, it, q, th)))
    return bool(rng.random() < math.exp(lp))


# --- qualitative finding ("increase", "abolished", ...) ---------------------------------------
def _finding_loglik(model, it, q, th):
    return jnp.sum(log_direction(q, it.keyword, model.settings))


# --- arm-level percent change: mean of an arm (sampling error) or "about X %" ----------------
def _pct_precompute(model, it, row) -> None:
    import pandas as pd

    it.const.update(y=math.log1p(it.value / 100.0))
    n = row["n"]
    if pd.isna(n) and it.spec.get("n_arm"):
        n = model.n_of(it.spec["n_arm"], it.spec.get("n_arm_share", 1.0))
    it.const.update(n=None if pd.isna(n) else int(n))


def _arm_mean_loglik(model, it, q, th):
    return log_normal_obs(it.const["y"], q, it.widen * model.arm_sd(it, th))


def _arm_mean_simulate(model, it, q, th, rng) -> float:
    return 100.0 * math.expm1(float(q) + it.widen * float(model.arm_sd(it, th)) * rng.standard_normal())


def _approx_loglik(model, it, q, th):
    return log_normal_obs(it.const["y"], q, it.widen * model.settings.approx_log_sd)


def _approx_simulate(model, it, q, th, rng) -> float:
    return 100.0 * math.expm1(float(q) + it.widen * model.settings.approx_log_sd * rng.standard_normal())


# --- "p <= alpha vs placebo" (censored two-sample t statistic) --------------------------------
def _t_placebo_precompute(model, it, row) -> None:
    """n per arm from design rows: ``n_arm``/``n_placebo``, or ``n_total`` split equally over
    ``arms`` (allocation not reported: documented in the row's evidence-map note). The level is
    the row's reported p-value bound, or ``significance_alpha`` for a trial that reports only a
    significant change (``as_test``)."""
    spec = it.spec
    if "n_total" in spec:
        n1 = n2 = model.n_of(spec["n_total"], 1.0 / float(spec.get("arms", 2)))
    else:
        n1, n2 = model.n_of(spec["n_arm"]), model.n_of(spec["n_placebo"])
    alpha = it.value if it.value is not None and not spec.get("as_test") else model.settings.significance_alpha
    df = n1 + n2 - 2
    it.const.update(n1=n1, n2=n2, df=df, alpha=float(alpha), t_crit=t_from_two_sided_p(alpha, df))


def _t_placebo_loglik(model, it, q, th):
    c = it.const
    ncp = q / (th["sigma_person"] * math.sqrt(1 / c["n1"] + 1 / c["n2"]))
    return log_p_upper_bound(ncp, c["t_crit"], c["df"])


# --- exact p-value of a paired test vs baseline ----------------------------------------------
def _t_paired_precompute(model, it, row) -> None:
    n = int(row["n"])
    df = n - 1
    it.const.update(n=n, df=df, t_obs=t_from_two_sided_p(it.value, df))


def _t_paired_loglik(model, it, q, th):
    c = it.const
    ncp = q / (th["sigma_person"] / math.sqrt(c["n"]))
    return log_t_observed(ncp, c["t_obs"], c["df"])


def _t_paired_simulate(model, it, q, th, rng) -> float:
    c = it.const
    ncp = float(q) / (float(th["sigma_person"]) / math.sqrt(c["n"]))
    t = abs(ncp + math.sqrt(1 + ncp ** 2 / (2 * c["df"])) * rng.standard_normal())
    return two_sided_p(t, c["df"])


# --- smallest or largest of several within-arm CVs -------------------------------------------
def _cv_precompute(model, it, row) -> None:
    n = model.n_of(it.spec["n_arm"])
    cv = it.value / 100.0
    it.const.update(n=n, se=cv_relative_se(cv, n), log_cv=math.log(cv))


def _cv_loglik(model, it, q, th):
    return log_normal_obs(it.const["log_cv"], q, it.const["se"])


def _cv_simulate(model, it, q, th, rng) -> float:
    return 100.0 * math.exp(float(q) + it.const["se"] * rng.standard_normal())


# --- approximate time to plateau -------------------------------------------------------------
def _t90_precompute(model, it, row) -> None:
    unit = str(row["unit"])
    factor = TIME_UNIT_DAYS.get(unit)
    if factor is None:
        raise UserError(f"time unit {unit!r} not understood", field=it.evidence_id)
    it.const.update(log_days=math.log(it.value * factor), unit_days=factor)


def _t90_loglik(model, it, q, th):
    return log_normal_obs(it.const["log_days"], q, it.widen * math.log(model.settings.approx_factor))


def _t90_simulate(model, it, q, th, rng) -> float:
    days = math.exp(float(q) + it.widen * math.log(model.settings.approx_factor) * rng.standard_normal())
    return days / it.const["unit_days"]


# --- log ratio of an arm mean to a placebo mean (both with SDs, end-of-treatment levels) ------
def _ratio_precompute(model, it, row) -> None:
    """y = log(mean_arm / mean_placebo); sampling variances by the delta method,
    var(log mean) = (SD / mean)^2 / n, from the rows named in the spec (placebo mean and SD,
    this arm's SD); a secondary copy's variances are widened (``widen``, applied by the claim)."""
    import pandas as pd

    p_mean = model._row(it.spec["placebo_mean"])
    p_sd = model._row(it.spec["placebo_sd"])
    a_sd = model._row(it.spec["sd"])
    for r, what in ((row, "arm mean"), (p_mean, "placebo mean"), (p_sd, "placebo SD"), (a_sd, "arm SD")):
        if pd.isna(r["n"]) or pd.isna(r["value"]) or float(r["value"]) <= 0:
            raise UserError(f"{what} row needs a positive value and n", field=str(r["evidence_id"]))
    m1, n1 = float(it.value), int(row["n"])  # it.value: the reported mean, or a simulated one
    m0, n0 = float(p_mean["value"]), int(p_mean["n"])
    var_arm = (float(a_sd["value"]) / float(row["value"])) ** 2 / n1
    var_p = (float(p_sd["value"]) / m0) ** 2 / n0
    it.const.update(y=math.log(m1 / m0), var_arm=var_arm, var_placebo=var_p, widen=it.widen,
                    placebo_key=str(it.spec["placebo_mean"]), placebo_mean=m0)


def _ratio_loglik(model, it, q, th):
    c = it.const
    sd = jnp.sqrt(c["widen"] ** 2 * (c["var_arm"] + c["var_placebo"]) + th["sigma_arm"] ** 2)
    return log_normal_obs(c["y"], q, sd)


def _ratio_simulate(model, it, q, th, rng) -> float:
    """An arm mean on the reported scale (the placebo mean kept at its reported value)."""
    c = it.const
    sd = math.sqrt(c["widen"] ** 2 * (c["var_arm"] + c["var_placebo"]) + float(th["sigma_arm"]) ** 2)
    return c["placebo_mean"] * math.exp(float(q) + sd * rng.standard_normal())


# --- one-sided bound on a model quantity (e.g. NAD+ rose by at most 60 %) ---------------------
def _bound_precompute(model, it, row) -> None:
    it.const.update(bound=math.log1p(it.value / 100.0), side="low" if it.statistic == "range_low" else "high")


def _bound_loglik(model, it, q, th):
    return log_bound(q, it.const["bound"], it.const["side"], model.settings)


KINDS: dict[str, ObservationKind] = {k.name: k for k in (
    ObservationKind("finding", True, _nothing, _finding_loglik, _simulate_event),
    ObservationKind("arm_mean_change", False, _pct_precompute, _arm_mean_loglik, _arm_mean_simulate),
    ObservationKind("approximate_change", False, _pct_precompute, _approx_loglik, _approx_simulate),
    ObservationKind("t_vs_placebo_bound", True, _t_placebo_precompute, _t_placebo_loglik, _simulate_event),
    ObservationKind("t_paired_exact_p", False, _t_paired_precompute, _t_paired_loglik, _t_paired_simulate),
    ObservationKind("cv_extreme", False, _cv_precompute, _cv_loglik, _cv_simulate),
    ObservationKind("approximate_time", False, _t90_precompute, _t90_loglik, _t90_simulate),
    ObservationKind("bound", True, _bound_precompute, _bound_loglik, _simulate_event),
    ObservationKind("log_ratio_vs_placebo", False, _ratio_precompute, _ratio_loglik, _ratio_simulate),
)}

#: observable -> kind, for rows whose kind follows from what they measure
_BY_OBSERVABLE = {"human_t_vs_placebo": "t_vs_placebo_bound", "human_t_paired": "t_paired_exact_p",
                  "human_cv_extreme": "cv_extreme", "human_t90": "approximate_time",
                  "human_t_half": "approximate_time", "human_ratio_vs_placebo": "log_ratio_vs_placebo",
                  "human_nam_ratio_vs_placebo": "log_ratio_vs_placebo"}
_BY_STATISTIC = {"pct_change_median": "approximate_change", "pct_change_from_baseline": "arm_mean_change"}


def kind_of(statistic: str, observable: str, keyword: str | None, as_test: bool = False) -> str:
    """The observation kind of a scored row (a significance statement scored through the power of
    its test, else a qualitative finding, else by statistic, else by observable); a row no kind
    accepts is a mapping error."""
    if as_test:
        if observable != "human_t_vs_placebo":
            raise UserError("as_test needs observable human_t_vs_placebo")
        return "t_vs_placebo_bound"
    if keyword is not None:
        return "finding"
    if statistic in _BY_STATISTIC:
        return _BY_STATISTIC[statistic]
    if observable in _BY_OBSERVABLE:
        return _BY_OBSERVABLE[observable]
    if statistic in ("range_low", "range_high"):
        return "bound"
    raise UserError(f"no likelihood for statistic {statistic!r} with observable {observable!r}")
