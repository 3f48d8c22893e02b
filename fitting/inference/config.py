"""Fit settings (:class:`FitConfig`), settings files, and the evidence selection of a fit."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from nadfit.datasets.errors import UserError
from nadfit.models.settings import ObservationSettings


def _is_number(v) -> bool:
    """A real number (int or float), not a bool or a string."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: NUTS implementations ``nadfit fit`` can use (``FitConfig.sampler``): numpyro (the whole sampler
#: compiled by XLA, one chain per host CPU device; see ``inference.devices``) and nutpie (Rust, JAX
#: log density called through Python, low-rank mass matrix). PyMC's blackjax route is not offered:
#: PyMC 6.4 passes ``progress_bar`` to blackjax 1.7's NUTS kernel, which refuses it (TypeError).
SAMPLERS = ("numpyro", "nutpie")


#: without ``max_draws``, the chains may continue to this many times the first batch's draws
MAX_DRAWS_FACTOR = 4


@dataclass
class FitConfig:
    hypothesis: str = "mixed"
    evidence: list[str] = field(default_factory=list)  # study ids / evidence ids to keep ([] = all)
    exclude: list[str] = field(default_factory=list)  # study ids / evidence ids to leave out
    # numpyro at 0.9, main job of 2026-11-30 with 600 draws after 400 tuning steps: direct and mixed
    # passed, via-nr failed R-hat (1.015 at z_w73[sociali2016], a study-reliability mixture mode);
    # via-nr with 1000 after 500: R-hat 1.005, min bulk ESS 965, 0 divergences (771 s on 2 busy cores)
    # Draws per chain, first batch. The numpyro sampler then continues the same chains in
    # batches of draws / 2 while the R-hat or bulk-ESS gate is not met and can still be met, up to
    # `max_draws` per chain (None: MAX_DRAWS_FACTOR x draws; 0 or false: never continue)
    # (inference.xla_nuts). Session 13, default seed, 500 draws: min bulk ESS direct ~1000,
    # via-nr ~570, mixed 498 (R-hat 1.009), i.e. 0.25-0.5 effective draws per draw; 1000 for
    # every fit spent ~23 s per fit on draws the gates did not need.
    draws: int = 500
    max_draws: int | None = None
    # Session 13, default seed, 300 vs 500 tuning steps (draws as above): 0 divergences either
    # way; min bulk ESS direct 1207 vs 1049, via-nr 882 vs 929 (both continued to 750 draws),
    # mixed 501 vs 498; sampling ~10 s shorter per fit (mixed 76 vs 84-91 s, direct 74 vs 80-89 s)
    tune: int = 300
    chains: int = 4
    seed: int = 20261122
    # 0.99 was needed by nutpie (divergences at r_kd at 0.8); numpyro's NUTS at 0.9 had none on direct and
    # mixed at 600 + 400, but direct had 1 divergence at 1000 + 500 (fresh-clone main job, 2026-11-30)
    # Session 8, monostable model, 1000 + 500, same seed: at 0.8 mixed had 0 divergences (31 vs 55
    # leapfrog steps per draw, min ESS 828 vs 1006: 1.46x the ESS per gradient) but via-nr had 1,
    # at ell = 0.002 (its 0.2 % posterior quantile) with beta = 1120 -- the tail where consumption is
    # all saturable; direct had 2 (R-hat 1.003, ESS 2452), not in that tail (ell at its 49th and 71st
    # percentiles): 0.95 stays until the divergences' region is found and reparametrised.
    # Session 14, current model, 4 x (300 + 500), seeds default / 1 / 2 (the main job's four
    # posteriors; models/VERIFICATION.md "target_accept 0.9"): 0.9 needed 0.65-0.93 x the
    # gradient evaluations of 0.95 (warm-up and draws; mean 0.79 over 12 pairs); 1 divergent
    # transition in 12 fits against 0 in 12. But the slowest parameter, z_w73[sociali2016],
    # mixed worse (min ESS lower in 5 of 6 via-nr/mixed pairs), and the main job at 0.9 failed:
    # mixed continued 500 -> 750 draws and ended at R-hat 1.03, ESS 111 (gates failed). So 0.95.
    # Session 16: z_w73 is integrated out of the log density (models/latent.py). Default seed,
    # 4 x (300 + 500): at 0.9 all three hypotheses passed at 500 draws with 0 divergences (draw
    # phase: via-nr 62.7k gradients, min ESS 1198; mixed 78.2k, 622; direct 71.7k, 1188); at
    # 0.95 via-nr had 1 divergence (86.9k); at 0.8 via-nr and mixed had 1 each and mixed no
    # fewer gradients (78.8k). So 0.9 (models/VERIFICATION.md, "Session 16").
    target_accept: float = 0.9
    # Rare divergences at 0.95 remain: `direct` gave 1 divergent transition of 4000 in 3 of 8
    # realisations (sessions 7-10; ell prior Beta(1, 4): default seed 0, then 1 after a
    # floating-point change, seeds 1 / 2: 1 / 0; trial prior Beta(2, 8): default / 1 / 2 / 3:
    # 0 / 0 / 1 / 0), each replayed to a different region (the ell -> 0 capacity wall, the
    # monostability fold of the rodent/cell classes; models/VERIFICATION.md). So a fit that ends
    # with any divergence is sampled again, once, same seed, at ``retry_target_accept`` (Stan's
    # advice: a smaller step size); the run records both attempts and is gated on the second. At
    # 0.99 `direct` gave 0 divergences at the default seed and seed 1 (the two failing Beta(1, 4)
    # realisations), at 1.4-1.8x the sampling time. None (false in a config file): never retry.
    retry_target_accept: float | None = 0.99
    # Before that retry (numpyro): the draws with the divergences are discarded and the chains
    # draw again from where they stopped with the adapted step size times this factor, keeping
    # the warm-up (xla_nuts.sample_numpyro; its draws-only program is compiled once, then
    # cached). Session 17: with the unequal-step grid, `direct` (1) and `via-nr` (2) diverged at
    # 0.9 (default seed), and each retry at 0.99 cost a whole second fit, warm-up and compilation
    # included. None (false): straight to the retry at retry_target_accept.
    redraw_step_factor: float | None = 0.5
    sampler: str = "numpyro"  # numpyro | nutpie (SAMPLERS)
    dense_mass: bool = False  # numpyro: dense mass matrix (nutpie always adapts a low-rank one)
    widen_priors: float = 1.0
    accept_failed_gates: bool = False
    prior_draws: int = 500
    observation: dict = field(default_factory=dict)

    def validate(self) -> "FitConfig":
        from nadfit.models.hypotheses import HYPOTHESES

        if not isinstance(self.hypothesis, str) or self.hypothesis not in HYPOTHESES:
            raise UserError(f"unknown hypothesis {self.hypothesis!r}; choose one of {', '.join(HYPOTHESES)}",
                            field="hypothesis")
        for name in ("evidence", "exclude"):
            v = getattr(self, name)
            if not isinstance(v, (list, tuple)) or not all(isinstance(t, str) for t in v):
                raise UserError(f"{name} must be a list of study or evidence ids, got {v!r}", field=name)
        if self.max_draws is False:
            self.max_draws = 0
        m = self.max_draws
        if m is not None and (not isinstance(m, int) or isinstance(m, bool) or m < 0):
            raise UserError(f"max_draws must be a whole number (0 or false: never continue the chains), got {m!r}",
                            field="max_draws")
        for name in ("draws", "tune", "chains", "prior_draws"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if name == "tune" else 1):
                extra = " or 0" if name == "tune" else ""
                raise UserError(f"{name} must be a positive whole number{extra}, got {v!r}", field=name)
        if not (isinstance(self.seed, int) and not isinstance(self.seed, bool) and 0 <= self.seed < 2**63):
            raise UserError(f"seed must be a non-negative whole number below 2**63, got {self.seed!r}", field="seed")
        if not (_is_number(self.target_accept) and 0.5 <= float(self.target_accept) < 1.0):
            raise UserError(f"target_accept must be in [0.5, 1), got {self.target_accept!r}",
                            field="target_accept")
        if self.retry_target_accept is False:  # TOML has no null
            self.retry_target_accept = None
        r = self.retry_target_accept
        if r is not None and not (_is_number(r) and float(self.target_accept) < float(r) < 1.0):
            raise UserError(f"retry_target_accept must be above target_accept ({self.target_accept}) and "
                            f"below 1, or none, got {r!r}", field="retry_target_accept")
        if self.redraw_step_factor is False:  # TOML has no null
            self.redraw_step_factor = None
        f = self.redraw_step_factor
        if f is not None and not (_is_number(f) and 0.0 < float(f) < 1.0):
            raise UserError(f"redraw_step_factor must be between 0 and 1, or none, got {f!r}",
                            field="redraw_step_factor")
        if not isinstance(self.sampler, str) or self.sampler not in SAMPLERS:
            raise UserError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}", field="sampler")
        if not isinstance(self.dense_mass, bool):
            raise UserError(f"dense_mass must be true or false, got {self.dense_mass!r}", field="dense_mass")
        if not (_is_number(self.widen_priors) and math.isfinite(self.widen_priors) and self.widen_priors > 0):
            raise UserError(f"widen_priors must be a positive number, got {self.widen_priors!r}", field="widen_priors")
        if not isinstance(self.accept_failed_gates, bool):
            raise UserError(f"accept_failed_gates must be true or false, got {self.accept_failed_gates!r}",
                            field="accept_failed_gates")
        if not isinstance(self.observation, dict):
            raise UserError(f"observation must be a mapping of observation settings, got {self.observation!r}",
                            field="observation")
        known = set(ObservationSettings().to_dict())
        for k, v in self.observation.items():
            if k not in known:
                raise UserError(f"unknown observation setting {k!r}; known: {', '.join(sorted(known))}",
                                field="observation")
            if not (_is_number(v) and math.isfinite(v) and v > 0):
                raise UserError(f"observation setting {k} must be a positive number, got {v!r}", field="observation")
        try:  # the settings' own range checks (e.g. eps in (0, 0.5)), before any heavy import
            self.settings()
        except ValueError as err:
            raise UserError(str(err), field="observation") from None
        return self

    def draws_cap(self) -> int:
        """Draws per chain the chains may continue to (at least ``draws``)."""
        m = MAX_DRAWS_FACTOR * self.draws if self.max_draws is None else self.max_draws
        return max(int(m), int(self.draws))

    def settings(self) -> ObservationSettings:
        return replace(ObservationSettings(), **self.observation)

    def to_dict(self) -> dict:
        return asdict(self)


#: a first look: gates are expected to fail, so a divergent quick fit is not sampled again
QUICK = {"draws": 300, "tune": 300, "chains": 2, "prior_draws": 200, "retry_target_accept": None, "max_draws": 0}


def config_from_file(path: Path) -> FitConfig:
    """A FitConfig from a TOML or YAML file (keys as in FitConfig)."""
    from nadfit.fitting.storage.files import read_mapping_file

    path = Path(path)
    data = read_mapping_file(path, "config", "config must be a mapping of settings")
    known = set(FitConfig.__dataclass_fields__)
    for k in data:
        if k not in known:  # the key is echoed: keep the message on one line whatever it holds
            shown = k if isinstance(k, str) and k.isprintable() else repr(k)
            raise UserError(f"unknown setting {k!r}", file=str(path), field=shown)
    try:
        return FitConfig(**data).validate()
    except UserError as err:
        raise UserError(err.message, file=str(path), field=err.field) from None


def select_evidence(df, keep: list[str], exclude: list[str]):
    """Rows of the evidence table selected by study or evidence ids."""
    studies = set(df["study_id"])
    ids = set(df["evidence_id"])
    for token in list(keep) + list(exclude):
        if token not in studies and token not in ids:
            raise UserError(f"evidence selector {token!r} matches no study or evidence id", field="evidence")
    mask = np.ones(len(df), dtype=bool)
    if keep:
        mask &= df["study_id"].isin(keep).to_numpy() | df["evidence_id"].isin(keep).to_numpy()
    if exclude:
        mask &= ~(df["study_id"].isin(exclude).to_numpy() | df["evidence_id"].isin(exclude).to_numpy())
    return df[mask].reset_index(drop=True)


def make_config(config: Path | None = None, *, quick: bool = False, **overrides) -> FitConfig:
    """Settings of one fit: defaults, then the config file, then ``QUICK`` (with ``quick``), then
    every override that is not None (command-line options win over the file). Validated."""
    cfg = config_from_file(config) if config else FitConfig()
    if quick:
        for k, v in QUICK.items():
            setattr(cfg, k, v)
    for k, v in overrides.items():
        if v is not None:
            setattr(cfg, k, v)
    return cfg.validate()
