"""One registry of every model parameter: prior family, arguments, unit, and where it comes from.

Priors backed by literature values are *computed* from rows of ``datasets/kinetic_priors.csv``
(identified by ``row_id``): the log-median is the geometric mean of the rows and the log-sd is
widened until every row lies inside the central 95 % band (conflicting values widen the prior;
they are not averaged away silently). Parameters with no literature value are marked ``weak``
and carry the reason. A prior whose number is also used as evidence would count that number
twice, so such numbers are used only on the evidence side (see ``note``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from nadfit.datasets.errors import UserError

#: the parameters users ask about first (printed after a fit, checked by recovery and SBC)
KEY_PARAMETERS = ("beta", "gamma", "pi_nmn", "pi_nr", "t_blood_days", "sigma_person", "mu_phi", "tau_phi")
FAMILIES = ("lognormal", "normal", "halfnormal", "beta", "uniform", "truncnormal", "gamma")


@dataclass(frozen=True)
class Prior:
    name: str
    family: str
    args: dict
    unit: str
    description: str
    basis: str
    rows: tuple[str, ...] = ()
    weak: bool = False
    group: str = "core"

    def median(self) -> float:
        a = self.args
        if self.family == "lognormal":
            return math.exp(a["mu"])
        if self.family in ("normal", "truncnormal"):
            return a["mu"]
        if self.family == "halfnormal":
            return a["sigma"] * 0.6744897501960817
        if self.family == "beta":
            from scipy.stats import beta

            return float(beta(a["alpha"], a["beta"]).median())
        if self.family == "uniform":
            return 0.5 * (a["lower"] + a["upper"])
        if self.family == "gamma":
            from scipy.stats import gamma

            return float(gamma(a["alpha"], scale=1.0 / a["beta"]).median())
        raise ValueError(self.family)

    def scipy(self):
        from scipy import stats

        a = self.args
        if self.family == "lognormal":
            return stats.lognorm(s=a["sigma"], scale=math.exp(a["mu"]))
        if self.family == "normal":
            return stats.norm(a["mu"], a["sigma"])
        if self.family == "halfnormal":
            return stats.halfnorm(scale=a["sigma"])
        if self.family == "beta":
            return stats.beta(a["alpha"], a["beta"])
        if self.family == "uniform":
            return stats.uniform(a["lower"], a["upper"] - a["lower"])
        if self.family == "gamma":
            return stats.gamma(a["alpha"], scale=1.0 / a["beta"])
        if self.family == "truncnormal":
            lo = (a["lower"] - a["mu"]) / a["sigma"]
            hi = (a["upper"] - a["mu"]) / a["sigma"]
            return stats.truncnorm(lo, hi, loc=a["mu"], scale=a["sigma"])
        raise ValueError(self.family)

    def describe(self) -> str:
        a = self.args
        if self.family == "lognormal":
            return f"LogNormal(median {math.exp(a['mu']):.4g}, x/÷ {math.exp(a['sigma']):.3g})"
        inner = ", ".join(f"{k}={v:.4g}" for k, v in a.items())
        return f"{self.family.capitalize()}({inner})"

    def to_dict(self) -> dict:
        return {
            "name": self.name, "family": self.family, "args": dict(self.args), "unit": self.unit,
            "description": self.description, "basis": self.basis, "rows": list(self.rows),
            "weak": self.weak, "group": self.group, "summary": self.describe(),
        }


# --------------------------------------------------------------------------------------------
# helpers that turn literature rows into lognormal arguments
# --------------------------------------------------------------------------------------------

def _to_uM(value: float, unit: str) -> float:
    factors = {"nM": 1e-3, "uM": 1.0, "mM": 1e3}
    if unit not in factors:
        raise ValueError(f"unit {unit!r} is not a concentration")
    return value * factors[unit]


@lru_cache(maxsize=1)
def _kinetic_rows() -> dict[str, tuple[float, str, str]]:
    from nadfit.datasets import load_kinetic_priors

    df = load_kinetic_priors()
    return {r.row_id: (float(r.value), str(r.unit), str(r.parameter)) for r in df.itertuples()}


def _values_uM(row_ids) -> list[float]:
    rows = _kinetic_rows()
    missing = [r for r in row_ids if r not in rows]
    if missing:
        raise UserError(f"kinetic prior rows {missing} not found", file="datasets/kinetic_priors.csv")
    return [_to_uM(rows[r][0], rows[r][1]) for r in row_ids]


def _values_hours(row_ids) -> list[float]:
    rows = _kinetic_rows()
    missing = [r for r in row_ids if r not in rows]
    if missing:
        raise UserError(f"kinetic prior rows {missing} not found", file="datasets/kinetic_priors.csv")
    factors = {"min": 1.0 / 60.0, "h": 1.0, "day": 24.0}
    out = []
    for r in row_ids:
        value, unit, _ = rows[r]
        if unit not in factors:
            raise UserError(f"unit {unit!r} is not a time", file="datasets/kinetic_priors.csv", field=r)
        out.append(value * factors[unit])
    return out


def lognormal_from_values(values, min_log_sd: float) -> tuple[float, float]:
    """Geometric mean; log-sd = max(min_log_sd, largest |log deviation| / 1.96)."""
    logs = np.log(np.asarray(values, dtype=float))
    mu = float(logs.mean())
    sd = max(min_log_sd, float(np.max(np.abs(logs - mu))) / 1.96)
    return mu, sd


# Row groups (see datasets/kinetic_priors.csv and ../shared/literature/kinetic_priors.md):
KI_NAD_ROWS = ("KP004", "KP008")  # NAMPT Ki NAD+: 0.14 uM (Burgos 2008), 2.1 uM (Bockwoldt 2019)
CONSUMER_KM_ROWS = ("KP074", "KP077", "KP078", "KP079", "KP080", "KP084", "KP090")
# SIRT1 29 uM, SIRT5 69/150 uM, CD38 26/17.1 uM, PARP 20 uM, lumped consumption 29 uM
# NAD+ turnover half-lives: mouse tissues 15 min - 15 h (Liu 2018), human cell lines 4.9-8.2 h
# (Hoyland 2024: HEK293, HeLa, U2OS)
NAD_HALF_LIFE_ROWS = ("KP133", "KP134", "KP135", "KP139", "KP141")
# NAMPT Km for NAM: 855 nM without ATP and 5 nM ATP-coupled (Burgos 2008), 0.92 uM mouse (SABIO-RK);
# the model-input copies of the 5 nM value (KP007, KP013) are not counted again
NAMPT_KM_NAM_ROWS = ("KP001", "KP002", "KP009")
# intracellular NAM of the NAD isotope-labelling model of a human cell line (Hoyland 2024): 30 uM
NAM_LEVEL_ROWS = ("KP102",)


def _registry() -> dict[str, Prior]:
    ki_mu, ki_sd = lognormal_from_values(_values_uM(KI_NAD_ROWS), math.log(4.0))
    km_mu, km_sd = lognormal_from_values(_values_uM(CONSUMER_KM_ROWS), math.log(1.5))
    # free NAD+ ~ consumer Km (Cambronne 2016, qualitative): ratio NAD_free/Km ~ 1 x/÷ 3 (weak)
    free_over_km_sd = math.log(3.0)
    beta_mu = km_mu - ki_mu  # NAD_free / Ki = (Km_cons / Ki) * (NAD_free / Km_cons)
    beta_sd = math.sqrt(ki_sd ** 2 + km_sd ** 2 + free_over_km_sd ** 2)

    tnad_mu, tnad_sd = lognormal_from_values(_values_hours(NAD_HALF_LIFE_ROWS), math.log(2.0))
    (nam0,) = _values_uM(NAM_LEVEL_ROWS)
    nu_mu, nu_sd = lognormal_from_values([nam0 / km for km in _values_uM(NAMPT_KM_NAM_ROWS)], math.log(4.0))

    P = Prior
    reg = [
        # ---- salvage core -------------------------------------------------------------------
        P("beta", "lognormal", {"mu": beta_mu, "sigma": beta_sd}, "1",
          "NAMPT feedback strength: free NAD+ / Ki(NAD+) (competitive inhibition by NAD+)",
          "Ki(NAD+) rows KP004, KP008 (geometric mean, widened to cover both) combined with "
          "consumer Km rows (free NAD+ is close to consumer Km, Cambronne 2016) and a x/÷3 "
          "uncertainty for that qualitative anchor", KI_NAD_ROWS + CONSUMER_KM_ROWS),
        P("kappa", "lognormal", {"mu": 0.0, "sigma": math.log(3.0)}, "1",
          "consumer Michaelis constant relative to free NAD+ (Km_cons / NAD_free)",
          "free NAD+ lies close to the Km of sirtuins/PARPs (Cambronne 2016, qualitative): "
          "median 1, x/÷3", (), weak=True),
        P("ell", "beta", {"alpha": 1.0, "beta": 4.0}, "1",
          "non-saturable share of baseline NAD+ removal (dilution, export, degradation)",
          "no literature value; keeps NAD+ bounded when precursor flux exceeds consumer capacity",
          (), weak=True),
        P("gamma", "truncnormal", {"mu": 0.0, "sigma": 0.4, "lower": -0.9, "upper": 0.9}, "1",
          "NAMPT expression elasticity to NAD+ (free sign: >0 NMN raises NAMPT, <0 suppresses)",
          "no literature value; centred on no response so the data decide the sign; the model "
          "uses min(gamma, monostability bound) (models.core.monostable_gamma: one steady state "
          "for every input)", (), weak=True, group="nampt"),
        # ---- perturbation efficacies and route shares --------------------------------------
        P("r_kd", "beta", {"alpha": 2.0, "beta": 8.0}, "1",
          "residual activity after knockdown, silencing, pharmacological inhibition or Na+ removal",
          "modelling assumption (no value read): mean 20 % residual", (), weak=True, group="uptake"),
        P("r_ko", "beta", {"alpha": 1.0, "beta": 19.0}, "1",
          "residual activity after genetic knockout/deficiency (incl. redundant isoforms)",
          "modelling assumption (no value read): mean 5 % residual", (), weak=True, group="uptake"),
        P("q_nrk", "beta", {"alpha": 2.0, "beta": 2.0}, "1",
          "share of imported NR phosphorylated by NRK (vs cleaved to NAM by PNP)",
          "PNP (KP068/KP069) and NRK1 (KP054/KP055) catalytic efficiencies are similar "
          "(kinetic_priors.md §5), so the split is set by enzyme amounts: centred on 1/2",
          ("KP054", "KP055", "KP068", "KP069"), weak=True, group="uptake"),
        P("omega_gut", "beta", {"alpha": 1.0, "beta": 3.0}, "1",
          "share of baseline gut-epithelium NAD+ synthesis that uses luminal/extracellular NMN",
          "no literature value", (), weak=True, group="uptake"),
        P("mu_phi", "normal", {"mu": 0.0, "sigma": 1.5}, "logit",
          "population logit share of NMN use through the direct SLC12A8 route (mixed hypothesis)",
          "no value read; symmetric between the routes", (), weak=True, group="uptake"),
        P("tau_phi", "halfnormal", {"sigma": 1.0}, "logit",
          "between-system SD of the direct-route share (mixed hypothesis)", "weakly informative",
          (), weak=True, group="uptake"),
        # ---- ageing -------------------------------------------------------------------------
        P("h_age", "beta", {"alpha": 2.0, "beta": 2.0}, "1",
          "loss of NAMPT expression in aged (25 months) mouse tissue, as a fraction",
          "no value read (Yoshino 2011 reports a decrease without size)", (), weak=True, group="nampt"),
        P("c_age", "lognormal", {"mu": 0.0, "sigma": 0.5}, "1",
          "NAD+ consumption rate in aged vs young mouse tissue",
          "no value read; McReynolds reports higher consumption without size", (), weak=True,
          group="nampt"),
        # ---- human blood kinetics -----------------------------------------------------------
        P("t_blood_days", "lognormal", {"mu": math.log(7.0), "sigma": math.log(4.0)}, "day",
          "half-life of the slow whole-blood NAD+ pool",
          "weakly informative (median one week, x/÷4: hours to months): the only literature "
          "values are Berven 2025's ~2-week plateau and 6.25-day washout half-life, which are "
          "scored as evidence (EV098, EV227), so no datum is used here (issue #14: a datum in a "
          "prior is not also a likelihood term)", (), weak=True, group="human"),
        P("t_nampt_days", "lognormal", {"mu": 0.0, "sigma": math.log(4.0)}, "day",
          "half-life of NAMPT expression changes", "no literature value", (), weak=True,
          group="nampt"),
        P("t_nad_tissue_hours", "lognormal", {"mu": tnad_mu, "sigma": tnad_sd}, "h",
          "NAD+ turnover half-life of the tissue that feeds the whole-blood pool (sets how much of "
          "each dose peak tissue NAD+ follows within a day)",
          "NAD+ half-lives measured by isotope tracing: mouse tissues 15 min-15 h (Liu 2018), human "
          "cell lines 4.9-8.2 h (Hoyland 2024); geometric mean widened to cover every row",
          NAD_HALF_LIFE_ROWS, group="human"),
        P("t_absorption_hours", "lognormal", {"mu": math.log(0.7), "sigma": math.log(3.0)}, "h",
          "half-time of oral absorption of NMN/NR (gut -> extracellular exposure)",
          "no human plasma NMN/NR time course read; centred on the rates assumed in "
          "models/VERIFICATION.md (k_abs 24/day); oral NAM peaks in plasma within 30-45 min "
          "(KP113, KP114), consistent with fast absorption", (), weak=True, group="human"),
        P("t_exposure_hours", "lognormal", {"mu": math.log(2.4), "sigma": math.log(3.0)}, "h",
          "half-life of the extracellular precursor exposure (uptake/conversion of absorbed NMN/NR)",
          "no human value read; centred on the rate assumed in models/VERIFICATION.md (k_x 7/day)",
          (), weak=True, group="human"),
        P("pi_nmn", "lognormal", {"mu": math.log(0.5), "sigma": 1.5}, "per g/day",
          "extra NAD+ synthesis flux (units of baseline flux) per g/day of oral NMN",
          "no value read (oral bioavailability and human NAD+ flux are gaps K5, K6); spans fold "
          "changes ~1.01-10 at 1 g/day", (), weak=True, group="human"),
        P("pi_nr", "lognormal", {"mu": math.log(0.5), "sigma": 1.5}, "per g/day",
          "extra NAD+ synthesis flux per g/day of oral NR", "as pi_nmn", (), weak=True,
          group="human"),
        P("k_a", "lognormal", {"mu": 0.0, "sigma": 1.5}, "g/day",
          "half-saturating NMN intake for the direct (SLC12A8) route",
          "no Km/Vmax read for SLC12A8 (gap K1)", (), weak=True, group="human"),
        P("lambda_serum", "lognormal", {"mu": 0.0, "sigma": 0.5}, "1",
          "elasticity of serum NAD+ (log fold) to the whole-blood pool (log fold)",
          "no value read; matrices differ ~100-fold in level (kinetic_priors.md §8)", (),
          weak=True, group="observation"),
        P("lambda_blood_unspecified", "lognormal", {"mu": 0.0, "sigma": 0.5}, "1",
          "elasticity of 'blood NAD' with matrix not stated (Yi 2022) to the whole-blood pool",
          "matrix and assay not stated (gap H2)", (), weak=True, group="observation"),
        P("sigma_arm", "lognormal", {"mu": math.log(0.1), "sigma": math.log(2.0)}, "log",
          "extra SD of a reported arm-mean log fold change around the model (assay, arm-level "
          "deviations), added to the arm's sampling error sigma_person / sqrt(n) when n is known",
          "weakly informative, bounded away from 0 (an arm mean always carries assay error)",
          (), weak=True, group="observation"),
        P("sigma_drift", "gamma", {"alpha": 2.0, "beta": 20.0}, "log",
          "SD of study-by-visit shifts shared by all arms of a study (placebo drift)",
          "weakly informative, boundary-avoiding Gamma(2, 20) (mean 0.1): with two visits the data "
          "cannot bound a hierarchical SD away from 0 (Chung et al. 2013)", (), weak=True,
          group="observation"),
        P("sigma_het", "gamma", {"alpha": 2.0, "beta": 8.0}, "log",
          "between-study SD of the log response scale (heterogeneity)",
          "weakly informative, boundary-avoiding Gamma(2, 8) (mean 0.25) for three studies "
          "(Chung et al. 2013)", (), weak=True, group="observation"),
        P("sigma_person", "lognormal", {"mu": math.log(0.2), "sigma": 0.75}, "log",
          "between-person SD of the log change of blood NAD+ within an arm",
          "weakly informative; Yang 2022's ~17 % between-person spread of levels (KP120/KP121) "
          "sets the order of magnitude", ("KP120", "KP121"), weak=True, group="observation"),
        # ---- NAM pool and oral first pass (human in vivo) ---------------------------------------
        P("nu_nam", "lognormal", {"mu": nu_mu, "sigma": nu_sd}, "1",
          "baseline NAM / Km_NAM of NAMPT (substrate saturation sigma = nu / (1 + nu))",
          "intracellular NAM of a human cell-line model (KP102, 30 uM, a model input) over each NAMPT "
          "Km_NAM row (855 nM, 5 nM, 0.92 uM); geometric mean widened to cover every ratio. No human "
          "tissue NAM level read; with NAD+ feedback as strong as beta, sigma barely changes the rate "
          "(models/core.py)", NAM_LEVEL_ROWS + NAMPT_KM_NAM_ROWS, weak=True, group="human"),
        P("d_nam", "lognormal", {"mu": 0.0, "sigma": math.log(3.0)}, "1",
          "NAM clearance (methylation by NNMT, renal loss) at baseline, in units of the baseline "
          "NAMPT salvage flux (equal to the dietary and de novo NAM inflow)",
          "no value read (human NAD+ and NAM fluxes are gaps K5, K6): median 1, x/÷3, chosen by a "
          "prior predictive check that does not use the scored serum NAM (EV242): 200 prior draws "
          "of via-nr give serum NAM x1.01-5.7 (90 %) at 250 mg/day NMN and blood NAD+ inside x1-20 "
          "at 900 mg/day in 89.5 % (median 0.2 x/÷5 gave NAM up to x42 and 81 %; "
          "models/VERIFICATION.md, Session 22). First-order because the NNMT Km for NAM (400 uM, "
          "KP093) lies far above NAM levels", ("KP093",), weak=True, group="human"),
        P("f_fp", "beta", {"alpha": 2.0, "beta": 2.0}, "1",
          "share of absorbed oral NMN/NR converted to NAM in gut and liver before it reaches "
          "tissues (first pass); the rest reaches them intact by the hypothesis's route",
          "no value read: isotope tracing finds much oral NR/NMN as NAM (Liu 2018, qualitative), "
          "so symmetric Beta(2, 2)", (), weak=True, group="human"),
        P("titration", "uniform", {"lower": 0.0, "upper": 1.0}, "1",
          "position of Airhart 2017's unreported days 3-6 dose between 250 and 2000 mg/day",
          "the regimen text gives days 1-2 and 7-9 only", (), weak=True, group="observation"),
    ]
    return {p.name: p for p in reg}


@lru_cache(maxsize=1)
def registry() -> dict[str, Prior]:
    """All priors by name (computed once)."""
    return _registry()


def prior_table() -> list[dict]:
    return [p.to_dict() for p in registry().values()]


def identifiability_table(draws: dict, priors: dict, level: float = 0.9) -> list[dict]:
    """Posterior / prior width of the central ``level`` interval for every parameter.

    ``draws``: name -> posterior draws (any shape; vector parameters have the component on the
    last axis); ``priors``: name -> Prior (registry entries); parameters absent from ``priors``
    (the standard-normal latent vectors z_*) are compared with N(0, 1). A ratio near 1 means the
    data did not narrow the prior (prior-only); near 0, well identified."""
    from scipy import stats

    lo_q, hi_q = 0.5 - level / 2.0, 0.5 + level / 2.0
    rows = []
    for name, value in draws.items():
        arr = np.asarray(value, dtype=float)
        dist = priors[name].scipy() if name in priors else stats.norm()
        prior_width = float(dist.ppf(hi_q) - dist.ppf(lo_q))
        comps = arr.reshape(-1, 1) if name in priors or arr.ndim <= 1 else arr.reshape(-1, arr.shape[-1])
        for k in range(comps.shape[1]):
            col = comps[:, k]
            width = float(np.quantile(col, hi_q) - np.quantile(col, lo_q))
            rows.append({"parameter": name if comps.shape[1] == 1 else f"{name}[{k}]",
                         "posterior_width": width, "prior_width": prior_width,
                         "ratio": width / prior_width, "weak": bool(priors[name].weak) if name in priors else True})
    return rows
