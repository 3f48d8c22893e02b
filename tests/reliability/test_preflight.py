"""Pre-flight check: a non-finite log-likelihood at the prior median stops the fit before sampling
with one line naming the evidence rows and the parameter values."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from reliability_helpers import run_cli, tmp_leftovers

from nadfit.datasets.errors import UserError


class FakeModel:
    def __init__(self, ll):
        self.items = [SimpleNamespace(study_id=f"study{i}", evidence_id=f"EV{i:03d}") for i in range(len(ll))]
        self.evidence_ids = [it.evidence_id for it in self.items]
        self._ll = np.asarray(ll, dtype=float)

    def prior_median_theta(self):
        return {"gamma": np.asarray(0.25), "pi_nmn": np.asarray(0.5), "z_het": np.zeros(3)}

    def loglik_and_pred(self, th):
        return self._ll, np.zeros_like(self._ll)

    study_ids = ["study1"]

    def terms(self, th):
        return {"study": np.asarray([np.sum(self._ll)]), "item": self._ll}


def test_finite_passes():
    from nadfit.fitting.inference.fit import preflight

    preflight(FakeModel([-1.0, -2.0, -0.5]))


@pytest.mark.parametrize("bad", [np.nan, -np.inf, np.inf])
def test_non_finite_is_named(bad):
    from nadfit.fitting.inference.fit import preflight

    with pytest.raises(UserError) as err:
        preflight(FakeModel([-1.0, bad, -0.5]))
    msg = str(err.value)
    assert msg.startswith("evidence: the log-likelihood is not finite at the prior median")
    assert "EV001 (study1, loglik " in msg and "EV000" not in msg and "EV002" not in msg
    assert "gamma=0.25" in msg and "pi_nmn=0.5" in msg and "z_het" not in msg
    assert "\n" not in msg


def test_many_rows_are_summarised():
    from nadfit.fitting.inference.fit import preflight

    with pytest.raises(UserError, match="and 4 more"):
        preflight(FakeModel([np.nan] * 12))


def test_fit_command_stops_before_sampling(tmp_path, capsys, monkeypatch):
    """Through ``nadfit fit``: the real model with one row's log-likelihood forced to NaN."""
    import jax.numpy as jnp

    import nadfit.fitting.inference.fit as fit
    from nadfit.models.model import EvidenceModel

    real = EvidenceModel.terms

    def poisoned(self, th):
        t = dict(real(self, th))
        t["item"] = t["item"].at[0].set(jnp.nan)
        return t

    def boom(*a, **k):
        raise AssertionError("sampling started despite a non-finite log-likelihood")

    monkeypatch.setattr(EvidenceModel, "terms", poisoned)
    monkeypatch.setattr(fit, "sample_posterior", boom)
    out = tmp_path / "run"
    rc, stdout, stderr = run_cli(capsys, ["fit", "--quick", "--hypothesis", "direct", "--evidence", "yi2022",
                                          "--out", out])
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1, stderr
    assert lines[0].startswith("nadfit: error: evidence: the log-likelihood is not finite at the prior median "
                               "for evidence row(s) EV"), lines[0]
    assert "(yi2022, loglik nan)" in lines[0] and "parameter values: " in lines[0]
    assert "Traceback" not in stdout + stderr
    assert not out.exists() and tmp_leftovers(tmp_path) == []
