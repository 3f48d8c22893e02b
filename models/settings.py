"""The documented constants of the observation model (:class:`ObservationSettings`).

Kept apart from :mod:`nadfit.models.observation` (which needs JAX) so that a command can read
and check its settings before any heavy import. The likelihoods that use them are described in
:mod:`nadfit.models.observation` and :mod:`nadfit.models.claims`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class ObservationSettings:
    """Documented constants of the qualitative and approximate likelihoods (all changeable)."""

    tau: float = 0.1  # tolerance of direction findings on the log scale
    #: numerical floor of a finding's probability (not a robustness device: contradicted findings
    #: are absorbed by the study reliability mixture of models/claims.py)
    eps: float = 0.001
    #: prior probability that a study's qualitative findings do not hold / do not transfer
    unreliable_prior: float = 0.05
    #: the same for a study whose study.yaml records a correction, Matters Arising or failed
    #: replication
    unreliable_prior_flagged: float = 0.25
    #: correlation of one person's measurement between two visits (joint test statistics)
    visit_correlation: float = 0.5
    #: SD multiplier of a numeric row whose grade is `secondary` (a copy, not the article)
    secondary_sd_factor: float = 2.0
    #: test level assumed for a trial that reports only that an effect was significant
    significance_alpha: float = 0.05
    no_change_band: float = float(np.log(1.1))  # |log ratio| counted as "no change"
    abolished_max: float = 0.25  # residual ratio counted as "abolished"/"required"
    not_required_min: float = 0.5  # residual ratio counted as "not required"
    approx_factor: float = 1.5  # x/÷ tolerance of values stated as approximate
    approx_log_sd: float = 0.1  # SD on the log-fold scale of a change stated as "about X %"
    cv_softness: float = 20.0  # sharpness of the smooth min/max over arms

    def __post_init__(self):
        for name in ("eps", "unreliable_prior", "unreliable_prior_flagged", "significance_alpha"):
            v = getattr(self, name)
            if not 0.0 < v < 0.5:
                raise ValueError(f"{name} must be in (0, 0.5), got {v}")
        if not -1.0 < self.visit_correlation < 1.0:
            raise ValueError(f"visit_correlation must be in (-1, 1), got {self.visit_correlation}")
        if self.secondary_sd_factor < 1.0:
            raise ValueError(f"secondary_sd_factor must be >= 1, got {self.secondary_sd_factor}")

    def to_dict(self) -> dict:
        return asdict(self)
