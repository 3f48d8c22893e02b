"""Calibration of the hypothesis comparison on synthetic evidence (reduced size; slow)."""

import pytest

from nadfit.fitting.calibration.confusion import confusion_matrix


@pytest.mark.slow
def test_confusion_matrix_reduced():
    res = confusion_matrix(reps=1, draws=150, tune=150, chains=1, seed=11, log=lambda *a: None)
    conf = res["confusion"]
    assert set(conf) == {"direct", "via-nr", "mixed"}
    # every replicate is assigned to exactly one hypothesis
    assert all(sum(row.values()) == 1 for row in conf.values())
    assert 0.0 <= res["recovery_rate"] <= 1.0
    assert len(res["details"]) == 3 and all(set(d["elpd"]) == set(conf) for d in res["details"])
