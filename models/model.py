"""The evidence model: parameters -> one log-likelihood term (and one model quantity) per row.

``EvidenceModel(hypothesis, evidence)`` reads ``models/evidence_map.yaml`` to decide how each
evidence row enters, takes every number it scores from the evidence table itself (values, n,
p-value bounds), and exposes ``loglik_and_pred(theta)`` — a pure JAX function used by the
PyMC model (``fitting/inference/build.py``) through ``pytensor.wrap_jax``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources

import jax
import jax.numpy as jnp
import numpy as np

from nadfit.datasets.errors import UserError
from nadfit.datasets.validate import safe_load_yaml
from nadfit.models import averaged, latent  # noqa: F401  (averaged enables x64)
from nadfit.models.claims import build_claims, claim_loglik, log_p_reliable, simulate_claim, study_terms
from nadfit.models.core import consumption_rate, monostable_gamma, steady_state_jax
from nadfit.models.hypotheses import CD73_SYSTEMS, PHI_SYSTEMS, Hypothesis, get_hypothesis
from nadfit.models.kinds import KINDS, kind_of
from nadfit.models.observation import KNOWN_DIRECTIONS, ObservationSettings, direction_keyword, smooth_extreme
from nadfit.models.priors import Prior, registry
from nadfit.models.scenarios import DT_DAYS, airhart_regimen, fixed_scenarios, likelihood_nodes, steady_scenarios
from nadfit.models.systems import is_human_observable, system_class_of

#: where no exposure is reported, in-vitro/in-vivo NMN exposure is set to give a precursor flux
#: equal to the baseline NAD+ synthesis flux (signs of monotone effects do not depend on it)
REFERENCE_EXPOSURE = 1.0
#: studies with a random effect on the size of the human response (quantitative data only)
HET_STUDIES = ("yi2022", "huang2022", "airhart2017", "nmn_exercise_30d")
#: study-by-visit shifts shared by all arms (placebo drift)
DRIFT_KEYS = ("huang2022_d30", "huang2022_d60")
#: CD73 share of extracellular NMN dephosphorylation per system: logistic(W73_LOGIT_SD * z) with
#: z ~ N(0, 1), independent per system (three systems cannot inform a hierarchy); a logit-normal
#: with SD 1.6 is close to uniform on (0, 1)
W73_LOGIT_SD = 1.6
#: latent vectors integrated out of the log density on a grid and drawn back after sampling
#: (models/latent.py): z_w73 enters only the finding of its system's CD73 experiment, a near-step
#: in z (sampling it set the fits' step size and R-hat: models/VERIFICATION.md, "Session 16")
MARGINALISED = ("z_w73",)
#: observables computed from the NMN-use ratio (the ones a CD73 perturbation acts on)
NMN_USE_OBSERVABLES = ("nmn_use_ratio", "nmn_use_ratio_inverse", "nmn_use_ratio_all", "gut_nad_ratio")
#: Species and systems: the core constants (beta, kappa, ell, gamma) of the human blood model hold
#: for humans; rodent tissues in vivo and cultured cells get their own values, offset from the
#: human ones by z * SD with z ~ N(0, 1) per system class and constant (non-centred partial
#: pooling with a fixed scale: two classes cannot inform a hierarchical SD). The scales are weak
#: modelling assumptions (no literature value): x/÷ 2 per SD for beta and kappa (log scale), 0.7
#: per SD on the logit of ell, 0.5 per SD on atanh(gamma / 0.9) (keeps |gamma| < 0.9).
CORE_CONSTANTS = ("beta", "kappa", "ell", "gamma")
CORE_OFFSET_SD = {"beta": math.log(2.0), "kappa": math.log(2.0), "ell": 0.7, "gamma": 0.5}
SYSTEM_CLASSES = ("rodent", "cell")
#: observables that use the core constants outside the human blood model (each such row gets a
#: system class from its evidence row: :func:`system_class_of`)
CORE_OBSERVABLES = ("gut_nad_ratio", "nampt_response_to_nmn", "aged", "nampt_overexpression_nad")


#: dimension of the claim terms in a run's log_likelihood group (not "claim": a variable named like
#: its own dimension is read back by xarray as a coordinate)
CLAIM_UNIT_DIM = "claim_id"

MATRIX_ELASTICITY = {"whole_blood": None, "serum": "lambda_serum",
                     "blood_unspecified": "lambda_blood_unspecified"}

COMMON_PARAMETERS = (
    "beta", "kappa", "ell", "gamma", "r_kd", "r_ko", "q_nrk", "omega_gut",
    "h_age", "c_age", "t_blood_days", "t_nampt_days", "t_nad_tissue_hours", "t_absorption_hours",
    "t_exposure_hours", "pi_nmn", "pi_nr", "nu_nam", "d_nam", "f_fp", "lambda_serum",
    "lambda_blood_unspecified", "sigma_arm", "sigma_drift", "sigma_het", "sigma_person",
    "titration",
)


def _log1m_exp(lp):
    """log(1 - exp(lp)) for lp < 0 (the probability that an event did not happen)."""
    return jnp.log(-jnp.expm1(jnp.minimum(lp, -1e-12)))


def load_evidence_map() -> dict:
    text = resources.files("nadfit.models").joinpath("evidence_map.yaml").read_text()
    return safe_load_yaml(text)


@dataclass
class Item:
    """One scored evidence row."""

    evidence_id: str
    study_id: str
    statistic: str
    observable: str
    spec: dict
    value: float | None
    keyword: str | None
    label: str
    kind: str = ""  # observation kind (models/kinds.py)
    const: dict = field(default_factory=dict)
    holds: float = 1.0  # 1: the reported finding held (real data); 0: it did not (simulations)
    grade: str = "primary"
    widen: float = 1.0  # SD multiplier of a numeric row (settings.secondary_sd_factor if secondary)

    @property
    def binary(self) -> bool:
        return KINDS[self.kind].binary


class EvidenceModel:
    def __init__(self, hypothesis: str | Hypothesis, evidence, settings: ObservationSettings | None = None,
                 exclude: tuple[str, ...] = (), outcomes: dict | None = None, mapping: dict | None = None):
        """``outcomes`` replaces reported results by simulated ones (calibration studies): for
        numeric rows a value on the row's reported scale (percent, p-value, weeks ...), for
        finding rows a bool saying whether the reported finding held. ``mapping`` replaces the
        shipped ``evidence_map.yaml`` (tests, users' own evidence maps)."""
        self.hypothesis = hypothesis if isinstance(hypothesis, Hypothesis) else get_hypothesis(hypothesis)
        self.outcomes = dict(outcomes or {})
        self.settings = settings or ObservationSettings()
        self.evidence = evidence
        self.mapping = mapping if mapping is not None else load_evidence_map()
        self.items = self._build_items(set(exclude))
        self.claims = build_claims(self, self.mapping.get("claims"))
        self.study_ids = list(dict.fromkeys(c.study_id for c in self.claims))
        self.unreliable_prior = self._reliability_priors()
        self.latent_claims  # noqa: B018  (checks now that each latent element enters one claim)
        self.latent_grid = latent.Grid.for_tolerance(self.settings.tau)
        # identical regimens share one simulated column
        scenarios = fixed_scenarios()
        unique: dict = {}
        self._column = {}
        for name, reg in scenarios.items():
            self._column[name] = unique.setdefault(reg, len(unique))
        self._column["airhart_nr"] = len(unique)
        self._regimens = list(unique) + [airhart_regimen(0.0)]
        # the blood course's grid: node times (days) with every scored day on or between nodes
        self.set_grid(likelihood_nodes(self._regimens + [airhart_regimen(1.0)], self._read_days()))

    def set_grid(self, days) -> None:
        """Integrate the blood course on the grid with node times ``days`` (``__init__``:
        ``scenarios.likelihood_nodes``; tests compare it with ``averaged.uniform_nodes``)."""
        self.grid_days = np.asarray(days, dtype=float)
        self._grid_steps = averaged.step_lengths(self.grid_days)
        nmn, nr = averaged.rate_grid(self._regimens, None, None, nodes=self.grid_days)
        self._doses = averaged.doses_grid(self._regimens, None, None, nodes=self.grid_days)
        _, nr1 = averaged.rate_grid([airhart_regimen(1.0)], None, None, nodes=self.grid_days)
        self._nmn_rate = jnp.asarray(nmn)
        self._nr_rate0 = jnp.asarray(nr)
        # titration adds (nr1 - nr0) * titration to the Airhart column
        tmask = np.zeros_like(nr)
        tmask[:, -1] = nr1[:, 0] - nr[:, -1]
        self._titration_mask = jnp.asarray(tmask)
        # steps with equal inputs share one within-day profile (the Airhart rates are traced)
        self._classes = averaged.input_classes(nmn, nr, tmask, self._doses)

    # ---------------------------------------------------------------------------------------
    # parameters
    # ---------------------------------------------------------------------------------------
    @cached_property
    def scalar_parameters(self) -> tuple[str, ...]:
        return COMMON_PARAMETERS + self.hypothesis.extra_parameters

    @cached_property
    def vector_parameters(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Standard-normal latent vectors: name -> (dimension name, labels)."""
        out = {
            "z_w73": ("cd73_system", CD73_SYSTEMS),
            "z_het": ("het_study", HET_STUDIES),
            "z_drift": ("drift_visit", DRIFT_KEYS),
            **{f"z_core_{c}": ("core_constant", CORE_CONSTANTS) for c in SYSTEM_CLASSES},
        }
        if self.hypothesis.phi is None:
            out["z_phi"] = ("phi_system", PHI_SYSTEMS)
        return out

    @cached_property
    def sampled_vector_parameters(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """:attr:`vector_parameters` that the sampler moves (not ``MARGINALISED``)."""
        return {k: v for k, v in self.vector_parameters.items() if k not in MARGINALISED}

    def priors(self) -> dict[str, Prior]:
        reg = registry()
        return {name: reg[name] for name in self.scalar_parameters}

    @property
    def evidence_ids(self) -> list[str]:
        return [it.evidence_id for it in self.items]

    # ---------------------------------------------------------------------------------------
    # items
    # ---------------------------------------------------------------------------------------
    @cached_property
    def _row_positions(self) -> dict[str, list[int]]:
        """Row positions of each evidence id (a boolean mask per lookup cost ~0.4 s per model)."""
        positions: dict[str, list[int]] = {}
        for k, eid in enumerate(self.evidence["evidence_id"].tolist()):
            positions.setdefault(eid, []).append(k)
        return positions

    def _row(self, evidence_id: str):
        found = self._row_positions.get(evidence_id, [])
        if len(found) != 1:
            raise UserError(f"evidence row {evidence_id} needed by the model is missing",
                            file="models/evidence_map.yaml", field=evidence_id)
        return self.evidence.iloc[found[0]]

    def n_of(self, ids, share: float = 1.0) -> int:
        """Participants in the design row(s) ``ids`` (one id or a list, summed), times ``share``
        (an arm's share of a total whose split is not reported; rounded down)."""
        ids = ids if isinstance(ids, list) else [ids]
        total = 0
        for eid in ids:
            v = self._row(eid)["value"]
            if v is None or not np.isfinite(float(v)):
                raise UserError("design row has no participant count", field=eid)
            total += int(float(v))
        return int(math.floor(total * float(share)))

    def _reliability_priors(self) -> dict[str, float]:
        """Prior probability that each study's findings do not hold (models/claims.py): the
        flagged value for a study whose study.yaml records a reliability event."""
        from nadfit.datasets.load import load_studies

        try:
            metas = load_studies()
        except UserError:
            metas = {}
        out = {}
        for sid in self.study_ids:
            meta = metas.get(sid)
            flagged = bool(meta is not None and meta.reliability)
            out[sid] = self.settings.unreliable_prior_flagged if flagged else self.settings.unreliable_prior
        return out

    @property
    def non_human_study_ids(self) -> list[str]:
        """Studies with a scored row that does not observe people in vivo (rodent tissues, cell
        cultures incl. human cell lines): :func:`is_human_observable`."""
        return list(dict.fromkeys(it.study_id for it in self.items if not is_human_observable(it.observable)))

    @property
    def flagged_studies(self) -> list[str]:
        return [s for s, r in self.unreliable_prior.items() if r == self.settings.unreliable_prior_flagged
                and r != self.settings.unreliable_prior]

    def _build_items(self, exclude: set[str]) -> list[Item]:
        available = set(self.evidence["evidence_id"])
        items = []
        for eid, spec in self.mapping["likelihood"].items():
            if eid in exclude or eid not in available:
                continue
            row = self._row(eid)
            statistic = str(row["statistic"])
            value = row.get("value")
            value = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
            override = self.outcomes.get(eid)
            keyword = None
            if statistic in ("direction", "statement"):
                keyword = spec.get("as_finding") or direction_keyword(row.get("value_text") or "")
                if keyword not in KNOWN_DIRECTIONS:
                    raise UserError(f"direction {keyword!r} has no likelihood", field=eid)
            label = f"{row['study_id']}: {row.get('analyte', '')} ({statistic}"
            label += f" {keyword})" if keyword else f" {value:g})" if value is not None else ")"
            try:
                kind = kind_of(statistic, spec["observable"], keyword, bool(spec.get("as_test")))
            except UserError as err:
                raise UserError(err.message, file="models/evidence_map.yaml", field=eid) from None
            grade = str(row.get("grade") or "primary")
            widen = self.settings.secondary_sd_factor if grade == "secondary" else 1.0
            item = Item(eid, str(row["study_id"]), statistic, spec["observable"], spec, value, keyword, label, kind,
                        grade=grade, widen=widen)
            if override is not None:
                if item.binary:
                    item.holds = 1.0 if bool(override) else 0.0
                else:
                    item.value = float(override)
            self._precompute(item, row)
            items.append(item)
        return items

    def _precompute(self, it: Item, row) -> None:
        """Constants of the item's observable (here) and of its observation kind (models/kinds.py)."""
        if it.observable == "nampt_overexpression_nad":
            it.const.update(factor=float(self._row(it.spec["factor_from"])["value"]))
        if it.observable in CORE_OBSERVABLES:
            it.const.update(system_class=system_class_of(row.get("route"), row.get("matrix")))
        KINDS[it.kind].precompute(self, it, row)

    # ---------------------------------------------------------------------------------------
    # the model
    # ---------------------------------------------------------------------------------------
    def _phi(self, th, system: str):
        if self.hypothesis.phi is not None:
            return jnp.asarray(self.hypothesis.phi)
        i = PHI_SYSTEMS.index(system)
        return jax.nn.sigmoid(th["mu_phi"] + th["tau_phi"] * th["z_phi"][i])

    def _w73(self, th, system: str):
        i = CD73_SYSTEMS.index(system)
        return jax.nn.sigmoid(W73_LOGIT_SD * th["z_w73"][i])

    def _core(self, th, system_class: str):
        """(beta, kappa, ell, gamma) of a system class (``SYSTEM_CLASSES``): the human constants
        offset by the class's standard-normal ``z_core_<class>`` times ``CORE_OFFSET_SD``."""
        z = th[f"z_core_{system_class}"]
        sd = CORE_OFFSET_SD
        beta = th["beta"] * jnp.exp(sd["beta"] * z[0])
        kappa = th["kappa"] * jnp.exp(sd["kappa"] * z[1])
        ell = jax.nn.sigmoid(jax.scipy.special.logit(th["ell"]) + sd["ell"] * z[2])
        gamma = 0.9 * jnp.tanh(jnp.arctanh(th["gamma"] / 0.9) + sd["gamma"] * z[3])
        return beta, kappa, ell, monostable_gamma(gamma, beta, kappa, ell, jnp)

    def _blood_params(self, th) -> dict:
        """Parameters of the human slow-time simulation (averaged.blood_course) from theta."""
        return {
            "beta": th["beta"], "kappa": th["kappa"], "ell": th["ell"],
            "gamma": monostable_gamma(th["gamma"], th["beta"], th["kappa"], th["ell"], jnp),
            "k_e": math.log(2.0) / th["t_nampt_days"], "k_b": math.log(2.0) / th["t_blood_days"],
            "k_t": 24.0 * math.log(2.0) / th["t_nad_tissue_hours"],
            "k_abs": 24.0 * math.log(2.0) / th["t_absorption_hours"],
            "k_x": 24.0 * math.log(2.0) / th["t_exposure_hours"],
            "pi_nmn": th["pi_nmn"], "pi_nr": th["pi_nr"],
            "phi": self._phi(th, "human"), "k_a": th.get("k_a", jnp.inf),
            "sigma_nam": th["nu_nam"] / (1.0 + th["nu_nam"]), "d_nam": th["d_nam"],
            "fp_odds": th["f_fp"] / (1.0 - th["f_fp"]),
        }

    def _read_days(self) -> list[float]:
        """The days at which the scored rows read the blood pool."""
        return sorted({float(it.spec["day"]) for it in self.items if "day" in it.spec and "scenario" in it.spec})

    def blood(self, th):
        """Whole-blood pool b for every human scenario: dict name -> array at the node times
        ``self.grid_days`` (``scenarios.likelihood_nodes``)."""
        p = self._blood_params(th)
        nr = self._nr_rate0 + th["titration"] * self._titration_mask
        b, _ = averaged.blood_course(p, self._nmn_rate, nr, self._grid_steps, doses_per_day=self._doses,
                                     classes=self._classes)
        return {name: b[:, i] for name, i in self._column.items()}

    def log_nam(self, th, regimens) -> jnp.ndarray:
        """log NAM (relative to baseline, daily mean at steady state) under each constant regimen
        (``averaged.nam_daily_mean``). The production path holds NAD+ and NAM at their joint steady
        state (models/VERIFICATION.md, "Session 22": exact after the first days)."""
        nmn, nr = averaged.rate_grid(regimens, DT_DAYS, DT_DAYS)
        doses = averaged.doses_grid(regimens, DT_DAYS, DT_DAYS)
        m = averaged.nam_daily_mean(self._blood_params(th), jnp.asarray(nmn[0]), jnp.asarray(nr[0]), doses[0])
        return jnp.log(m)

    def _log_b(self, blood, scenario: str, day: float):
        """log b of a scenario on ``day``: at a node, or linear in log b between the two nodes
        around it (``likelihood_nodes`` puts nodes on the whole days either side)."""
        if scenario == "none":
            return jnp.asarray(0.0)
        days = self.grid_days
        k = int(np.searchsorted(days, day))
        if k >= len(days):
            raise ValueError(f"day {day} is after the last simulated day {days[-1]}")
        log_b = jnp.log(jnp.maximum(blood[scenario], 1e-12))
        if days[k] == day:
            return log_b[k]
        w = (day - days[k - 1]) / (days[k] - days[k - 1])
        return (1 - w) * log_b[k - 1] + w * log_b[k]

    def _scale(self, th, spec):
        lam_name = MATRIX_ELASTICITY[spec["matrix"]]
        lam = th[lam_name] if lam_name else 1.0
        study = spec.get("study")
        het = jnp.exp(th["sigma_het"] * th["z_het"][HET_STUDIES.index(study)]) if study in HET_STUDIES else 1.0
        return lam * het

    def _drift(self, th, spec):
        key = spec.get("drift")
        return th["sigma_drift"] * th["z_drift"][DRIFT_KEYS.index(key)] if key else 0.0

    def _nmn_use(self, th, system: str, perturb: dict):
        """Ratio of NAD+ synthesis flux from extracellular NMN, perturbed / unperturbed."""
        phi = self._phi(th, system)
        slc = 1.0
        deph = 1.0
        a_nrk = 1.0
        for target, kind in perturb.items():
            r = th["r_ko"] if kind == "knockout" else th["r_kd"]
            if target == "slc12a8":
                slc = r
            elif target == "cd73":
                deph = 1.0 - self._w73(th, system) * (1.0 - r)
            elif target == "nrk":
                a_nrk = r
            else:
                raise UserError(f"unknown perturbation target {target!r}", file="models/evidence_map.yaml")
        return phi * slc + (1.0 - phi) * deph * self._nrk_factor(th, a_nrk)

    @staticmethod
    def _nrk_factor(th, a):
        q = th["q_nrk"]
        return (a * q / (a * q + 1.0 - q)) / q

    def _ss(self, th, system_class: str, j=0.0, e_base=1.0, c=1.0):
        beta, kappa, ell, gamma = self._core(th, system_class)
        return steady_state_jax(j, e_base, beta, kappa, ell, gamma, c)

    def _aged(self, th, cls: str):
        beta, kappa, ell, gamma = self._core(th, cls)
        e_base = 1.0 - th["h_age"]
        n = self._ss(th, cls, 0.0, e_base, th["c_age"])
        flux = th["c_age"] * consumption_rate(n, kappa, ell)
        return {"nad": jnp.log(n), "nampt": jnp.log(e_base) + gamma * jnp.log(n),
                "synthesis_flux": jnp.log(flux), "fractional_turnover": jnp.log(flux / n)}

    def quantity(self, it: Item, th, cache: dict):
        """The model quantity an item observes (log scale)."""
        spec, obs = it.spec, it.observable
        if is_human_observable(obs) and "blood" not in cache:
            cache["blood"] = self.blood(th)
        if obs == "human_log_fold":
            return self._scale(th, spec) * self._log_b(cache["blood"], spec["scenario"], spec["day"]) + self._drift(th, spec)
        if obs in ("human_t_vs_placebo", "human_dose_contrast", "human_ratio_vs_placebo"):
            ref = spec.get("placebo") or spec["reference"]
            return self._scale(th, spec) * (self._log_b(cache["blood"], spec["scenario"], spec["day"])
                                            - self._log_b(cache["blood"], ref, spec["day"]))
        if obs == "human_nam_ratio_vs_placebo":
            return self.log_nam(th, [steady_scenarios()[spec["scenario"]]])[0]
        if obs == "human_t_paired":
            return self._scale(th, spec) * self._log_b(cache["blood"], spec["scenario"], spec["day"]) + self._drift(th, spec)
        if obs == "human_cv_extreme":
            mus = jnp.stack([self._scale(th, spec) * self._log_b(cache["blood"], s, spec["day"])
                             for s in spec["scenarios"]])
            log_cv = jnp.log(th["sigma_person"]) - jnp.log(jnp.maximum(mus, 1e-9))
            return smooth_extreme(log_cv, spec["extreme"], self.settings.cv_softness)
        if obs == "human_t90":
            return jnp.log(math.log(10.0) * th["t_blood_days"] / math.log(2.0))
        if obs == "human_t_half":
            return jnp.log(th["t_blood_days"])
        if obs == "nmn_use_ratio":
            return jnp.log(self._nmn_use(th, spec["system"], spec["perturb"]))
        if obs == "nmn_use_ratio_inverse":
            return -jnp.log(self._nmn_use(th, spec["system"], spec["perturb"]))
        if obs == "nmn_use_ratio_all":
            return jnp.stack([jnp.log(self._nmn_use(th, spec["system"], p)) for p in spec["perturbs"]])
        if obs == "nr_use_ratio":
            a = th["r_ko"] if spec["perturb"]["nrk"] == "knockout" else th["r_kd"]
            return jnp.log(self._nrk_factor(th, a))
        if obs == "nmn_direct_share":
            # floored so that a share fixed at 0 (via-nr) gives a finite model quantity
            return jnp.log(jnp.maximum(self._phi(th, spec["system"]), 1e-12))
        if obs == "gut_nad_ratio":
            use = self._nmn_use(th, spec["system"], spec["perturb"])
            w = th["omega_gut"]
            return jnp.log(self._ss(th, it.const["system_class"], j=w * use, e_base=1.0 - w))
        if obs == "nampt_response_to_nmn":
            cls = it.const["system_class"]
            if ("nampt_response", cls) not in cache:
                n1 = self._ss(th, cls, j=REFERENCE_EXPOSURE)
                cache["nampt_response", cls] = self._core(th, cls)[3] * jnp.log(n1)
            return cache["nampt_response", cls]
        if obs == "aged":
            cls = it.const["system_class"]
            if ("aged", cls) not in cache:
                cache["aged", cls] = self._aged(th, cls)
            return jnp.stack([cache["aged", cls][q] for q in spec["quantities"]])
        if obs == "nampt_overexpression_nad":
            key = ("overexpression", it.const["system_class"], it.const["factor"])
            if key not in cache:
                cache[key] = jnp.log(self._ss(th, it.const["system_class"], e_base=it.const["factor"]))
            return cache[key]
        raise UserError(f"unknown observable {obs!r}", file="models/evidence_map.yaml", field=it.evidence_id)

    @staticmethod
    def arm_sd(it: Item, th):
        """SD of a reported arm-mean log change: sampling error sigma_person / sqrt(n) of the arm
        (when n is known) combined with the extra arm-level SD sigma_arm."""
        n = it.const.get("n")
        if n:
            return jnp.sqrt(th["sigma_arm"] ** 2 + th["sigma_person"] ** 2 / n)
        return th["sigma_arm"]

    def item_loglik(self, it: Item, q, th):
        return KINDS[it.kind].loglik(self, it, q, th)

    def terms(self, th: dict) -> dict:
        """All log-likelihood terms at ``th`` (pure JAX), with the marginalised latents
        (``MARGINALISED``; ignored if ``th`` holds them) integrated out:

        * ``study`` — one term per study (``self.study_ids``), marginalised over the study's
          reliability indicator; their sum is the total log-likelihood;
        * ``claim`` — leave-one-claim-out conditional terms (``self.claims`` order);
        * ``claim_raw`` — each claim's term given that its study is reliable (the mixture's input);
        * ``item`` — each row's own term given that its study is reliable (diagnostics: per-row
          reproduction probabilities, attribution); rows of a joint claim do not add up to it;
        * ``pred`` — each row's model quantity (log scale; mean over a vector quantity);
        * ``latent_weights`` — per marginalised latent, the grid masses (elements, grid points)
          of its posterior given the other parameters (models/latent.py).

        A row of a claim that depends on a latent reports, in ``item`` and ``pred``, the mean
        over that posterior (of its probability, of its quantity)."""
        th = {k: v for k, v in th.items() if k not in MARGINALISED}
        cache: dict = {}
        qs = [None if k in self._latent_rows else self.quantity(it, th, cache) for k, it in enumerate(self.items)]
        return self.terms_given_quantities(qs, th)

    def terms_given_quantities(self, qs: list, th: dict) -> dict:
        """:meth:`terms` from the rows' model quantities ``qs`` (``self.items`` order); ``th``
        supplies the observation model's own parameters (noise, drift, reliability). Rows of a
        claim that depends on a marginalised latent are evaluated on its grid from ``th``
        (their entries of ``qs`` are not used)."""
        th = {k: v for k, v in th.items() if k not in MARGINALISED}
        in_binary_claim = {i for c in self.claims if c.binary for i in c.rows}
        held, lls, preds = {}, {}, {}
        for k, (it, q) in enumerate(zip(self.items, qs)):
            if k not in self._latent_rows:
                held[k], lls[k], preds[k] = self._row_terms(it, q, th, k in in_binary_claim)
        claim_ll, grids = [], {}
        for ci, c in enumerate(self.claims):
            if ci in self.latent_claims:
                grids[ci] = self._claim_on_grid(c, th, *self.latent_claims[ci], in_binary_claim)
                claim_ll.append(self.latent_grid.integrate(grids[ci][0]))
            else:
                claim_ll.append(self._claim_ll(c, qs, held, lls, th))
        _, study_ll, cond = study_terms(self.claims, claim_ll, self.unreliable_prior)
        weights = self._latent_posteriors(grids, claim_ll)
        for ci, (_, item_g, pred_g) in grids.items():
            name, element = self.latent_claims[ci]
            w = weights[name][element]
            for j, r in enumerate(self.claims[ci].rows):
                lls[r] = latent.log_expectation(w, item_g[:, j])
                preds[r] = latent.expectation(w, pred_g[:, j])
        n = len(self.items)
        return {"study": study_ll, "claim": cond, "claim_raw": jnp.stack(claim_ll),
                "item": jnp.stack([lls[k] for k in range(n)]), "pred": jnp.stack([preds[k] for k in range(n)]),
                "latent_weights": {name: jnp.stack(w) for name, w in weights.items()}}

    def _latent_posteriors(self, grids: dict, claim_ll: list) -> dict:
        """Per marginalised latent, the grid masses of each element's posterior given the other
        parameters (the prior for an element without a claim). ``grids``: claim index -> the
        claim's terms on the grid; ``claim_ll``: claim terms, needed for the claims of the
        studies in ``grids`` (others may be None)."""
        weights = {name: [jnp.asarray(self.latent_grid.prior_weights)] * len(self.vector_parameters[name][1])
                   for name in MARGINALISED}
        for ci, (ll_g, _, _) in grids.items():
            name, element = self.latent_claims[ci]
            weights[name][element] = self.latent_grid.conditional_weights(
                ll_g, log_p_reliable(self.claims, claim_ll, self.unreliable_prior, ci))
        return weights

    def latent_weights(self, th: dict) -> dict:
        """``terms(th)["latent_weights"]``, computed from the studies with a latent claim only
        (the draws after sampling need no other row, e.g. not the blood course)."""
        th = {k: v for k, v in th.items() if k not in MARGINALISED}
        studies = {self.claims[ci].study_id for ci in self.latent_claims}
        in_binary_claim = {i for c in self.claims if c.binary for i in c.rows}
        cache: dict = {}
        qs, held, lls = {}, {}, {}
        claim_ll: list = [None] * len(self.claims)
        grids = {}
        for ci, c in enumerate(self.claims):
            if c.study_id not in studies:
                continue
            if ci in self.latent_claims:
                grids[ci] = self._claim_on_grid(c, th, *self.latent_claims[ci], in_binary_claim)
                claim_ll[ci] = self.latent_grid.integrate(grids[ci][0])
                continue
            for r in c.rows:
                qs[r] = self.quantity(self.items[r], th, cache)
                held[r], lls[r], _ = self._row_terms(self.items[r], qs[r], th, r in in_binary_claim)
            claim_ll[ci] = self._claim_ll(c, qs, held, lls, th)
        return {name: jnp.stack(w) for name, w in self._latent_posteriors(grids, claim_ll).items()}

    def _row_terms(self, it: Item, q, th, in_binary_claim: bool):
        """(term given the finding held, the row's term, its model quantity) of one row."""
        lp = jnp.sum(self.item_loglik(it, q, th))
        held = lp
        if it.holds == 0.0 and not in_binary_claim:  # a finding that did not hold: log(1 - P)
            lp = _log1m_exp(lp)
        return held, lp, (jnp.mean(q) if jnp.ndim(q) else q)

    def _claim_ll(self, c, qs, held, lls, th):
        if c.binary:
            # a binary claim held (all its rows as reported) or did not (simulated evidence)
            lp = claim_loglik(self, c, qs, held, th)
            if any(self.items[i].holds == 0.0 for i in c.rows):
                lp = _log1m_exp(lp)
            return lp
        return claim_loglik(self, c, qs, lls, th)

    def _claim_on_grid(self, c, th, name: str, element: int, in_binary_claim: set):
        """The claim's term and its rows' terms and quantities at every grid value of latent
        ``name[element]``: arrays (grid,), (grid, rows), (grid, rows)."""
        size = len(self.vector_parameters[name][1])

        def at(z):
            t = dict(th)
            t[name] = jnp.zeros(size).at[element].set(z)  # the claim's rows read this element only
            cache: dict = {}
            qs, held, lls, preds = {}, {}, {}, {}
            for r in c.rows:
                qs[r] = self.quantity(self.items[r], t, cache)
                held[r], lls[r], preds[r] = self._row_terms(self.items[r], qs[r], t, r in in_binary_claim)
            return (self._claim_ll(c, qs, held, lls, t), jnp.stack([lls[r] for r in c.rows]),
                    jnp.stack([preds[r] for r in c.rows]))

        return jax.vmap(at)(jnp.asarray(self.latent_grid.z))

    def recover_latents(self, th: dict, u: dict) -> dict:
        """Draws of the marginalised latents from their posterior given the other parameters in
        ``th`` and the evidence (models/latent.py): ``u`` maps each name in ``MARGINALISED`` to
        uniforms, one per element."""
        weights = self.latent_weights(th)
        return {name: self.latent_grid.draw(weights[name], jnp.asarray(u[name])) for name in MARGINALISED}

    def _latent_of(self, it: Item) -> tuple[str, int] | None:
        """The marginalised latent element a row's model quantity depends on, or None."""
        perturbs = it.spec.get("perturbs") or ([it.spec["perturb"]] if it.spec.get("perturb") else [])
        if it.observable not in NMN_USE_OBSERVABLES or not any("cd73" in p for p in perturbs):
            return None
        system = it.spec.get("system")
        if system not in CD73_SYSTEMS:
            raise UserError(f"a CD73 perturbation needs a system with a CD73 share ({', '.join(CD73_SYSTEMS)}), "
                            f"got {system!r}", file="models/evidence_map.yaml", field=it.evidence_id)
        return "z_w73", CD73_SYSTEMS.index(system)

    @cached_property
    def latent_claims(self) -> dict[int, tuple[str, int]]:
        """Claims whose term depends on a marginalised latent: claim index -> (name, element).
        Each element may enter one claim only (the integral is taken per claim)."""
        out: dict[int, tuple[str, int]] = {}
        owner: dict[tuple[str, int], str] = {}
        for ci, c in enumerate(self.claims):
            found = {self._latent_of(self.items[r]) for r in c.rows} - {None}
            if len(found) > 1:
                raise UserError(f"claim {c.claim_id} depends on two marginalised latents {sorted(found)}",
                                file="models/evidence_map.yaml", field=c.claim_id)
            if found:
                key = found.pop()
                if key in owner:
                    raise UserError(f"{key[0]}[{self.vector_parameters[key[0]][1][key[1]]}] enters two claims "
                                    f"({owner[key]}, {c.claim_id}); declare them one claim",
                                    file="models/evidence_map.yaml", field=c.claim_id)
                owner[key] = c.claim_id
                out[ci] = key
        return out

    @cached_property
    def _latent_rows(self) -> set[int]:
        return {r for ci in self.latent_claims for r in self.claims[ci].rows}

    def terms_from_claims(self, claim_raw) -> dict:
        """Study and claim terms from per-claim terms given reliable studies (``terms()['claim_raw']``,
        any leading sample axes), under this model's reliability priors; numpy arrays."""
        raw = np.asarray(claim_raw, dtype=float)
        parts = [raw[..., k] for k in range(raw.shape[-1])]
        _, study_ll, cond = study_terms(self.claims, parts, self.unreliable_prior)
        return {"evidence": np.asarray(study_ll), "claim": np.asarray(cond)}

    def log_density(self, th: dict):
        """Total log-likelihood (sum of the study terms)."""
        return jnp.sum(self.terms(th)["study"])

    def loglik_and_pred(self, th: dict):
        """(per-row terms given reliable studies, model quantity) in ``self.items`` order
        (diagnostics; the likelihood itself is :meth:`terms`' ``study``)."""
        t = self.terms(th)
        return t["item"], t["pred"]

    @property
    def claim_ids(self) -> list[str]:
        return [c.claim_id for c in self.claims]

    @property
    def unit_labels(self) -> dict[str, tuple[str, list[str]]]:
        """Pointwise log-likelihood variables of a run: name -> (dimension, labels).

        ``evidence`` is the primary unit of comparison, one term per study (the terms sum to
        the total log-likelihood); ``claim`` holds the exact leave-one-claim-out conditionals
        (secondary unit)."""
        return {"evidence": ("study", list(self.study_ids)), "claim": (CLAIM_UNIT_DIM, self.claim_ids)}

    def pointwise(self, th: dict) -> dict:
        """Pointwise log-likelihood per variable of :attr:`unit_labels` at parameters ``th``."""
        t = self.terms(th)
        return {"evidence": t["study"], "claim": t["claim"]}

    def simulate_outcomes(self, th: dict, rng) -> dict:
        """Draw every scored row's result from the likelihood at parameters ``th`` (the same
        joint model the fit scores: study reliability indicators, joint claims).

        Each study's reliability indicator is drawn from its prior; a binary claim (all rows
        findings, bounds or significance events) of an unreliable study holds with probability
        1/2, of a reliable one with its modelled probability (the joint event for a joint rule);
        numeric claims with a joint rule are drawn jointly (``claims.simulate_claim``), other
        rows by their kind. Returns evidence_id -> value on the reported scale (numeric rows) or
        bool (binary rows: whether the claim held as reported)."""
        cache: dict = {}
        qs = [self.quantity(it, th, cache) for it in self.items]
        held = [jnp.sum(self.item_loglik(it, q, th)) for it, q in zip(self.items, qs)]
        unreliable = {s: bool(rng.random() < r) for s, r in self.unreliable_prior.items()}
        out = {}
        for c in self.claims:
            if c.binary:
                p = 0.5 if unreliable[c.study_id] else math.exp(float(claim_loglik(self, c, qs, held, th)))
                ok = bool(rng.random() < p)
                out.update({self.items[i].evidence_id: ok for i in c.rows})
                continue
            joint = simulate_claim(self, c, qs, th, rng)
            if joint is not None:
                out.update(joint)
                continue
            for i in c.rows:
                it = self.items[i]
                q = qs[i] if it.binary else jnp.reshape(qs[i], (-1,))[0]
                out[it.evidence_id] = KINDS[it.kind].simulate(self, it, q, th, rng)
        return out

    # ---------------------------------------------------------------------------------------
    # convenience
    # ---------------------------------------------------------------------------------------
    def prior_median_theta(self) -> dict:
        th = {name: jnp.asarray(p.median()) for name, p in self.priors().items()}
        for name, (_, labels) in self.vector_parameters.items():
            th[name] = jnp.zeros(len(labels))
        return th

    def prior_draw(self, rng: np.random.Generator) -> dict:
        """One draw theta ~ prior (numpy): scalars from their registry priors, latent vectors ~ N(0, 1).

        The one prior sampler of calibration, recovery and the confusion matrix (same order of
        random numbers everywhere: scalars in ``scalar_parameters`` order, then the vectors)."""
        th = {name: float(p.scipy().rvs(random_state=rng)) for name, p in self.priors().items()}
        for name, (_, labels) in self.vector_parameters.items():
            th[name] = rng.standard_normal(len(labels))
        return th

    def blood_curve(self, th, compound: str, mg_per_day: float, days: float, doses_per_day: int = 1):
        """Whole-blood pool trajectory for a new regimen (for predictions and plots), in steps of
        DT_DAYS: (b, e), each (days + 1,)."""
        b, e = self.blood_curves(th, compound, (mg_per_day,), days, doses_per_day)
        return b[:, 0], e[:, 0]

    def blood_curves(self, th, compound: str, mg_per_day, days: float, doses_per_day: int = 1):
        """``blood_curve`` for several daily doses at once (one course, a column per dose):
        (b, e), each (days + 1, doses)."""
        return self.blood_regimens(th, [(compound, mg, doses_per_day) for mg in mg_per_day], days)

    def blood_regimens(self, th, arms, days: float):
        """Whole-blood courses of several daily regimens in one course, a column per
        ``(compound, mg_per_day, doses_per_day)`` of ``arms`` (compounds may differ):
        (b, e), each (days + 1, len(arms)), in steps of DT_DAYS."""
        from nadfit.models.core import daily_regimen

        regs = [daily_regimen(compound, mg, days, k) for compound, mg, k in arms]
        nmn, nr = averaged.rate_grid(regs, DT_DAYS, days)
        doses = averaged.doses_grid(regs, DT_DAYS, days)
        return averaged.blood_course(self._blood_params(th), jnp.asarray(nmn), jnp.asarray(nr), DT_DAYS,
                                     doses_per_day=doses)
