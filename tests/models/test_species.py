"""Species and systems (#15 item 4): rodent tissues and cultured cells have their own core
constants, offset from the human ones; the human blood model uses the human constants."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nadfit.models.model import CORE_CONSTANTS, CORE_OBSERVABLES, SYSTEM_CLASSES
from nadfit.models.systems import system_class_of


def _theta(model, seed=3):
    th = model.prior_draw(np.random.default_rng(seed))
    return {k: jnp.asarray(v) for k, v in th.items()}


def test_zero_offsets_give_the_human_constants_and_offsets_move_each_constant(models):
    m = models["mixed"]
    th = _theta(m)
    human = m._blood_params(th)  # the human constants as the model uses them (gamma: monostable)
    for cls in SYSTEM_CLASSES:
        zero = dict(th, **{f"z_core_{cls}": jnp.zeros(len(CORE_CONSTANTS))})
        got = m._core(zero, cls)
        for name, v in zip(CORE_CONSTANTS, got):
            assert float(v) == pytest.approx(float(human[name]), rel=1e-12, abs=1e-12), (cls, name)
        for i, name in enumerate(CORE_CONSTANTS):
            z = np.zeros(len(CORE_CONSTANTS))
            z[i] = 1.0
            moved = m._core(dict(th, **{f"z_core_{cls}": jnp.asarray(z)}), cls)
            assert float(moved[i]) != pytest.approx(float(th[name]), rel=1e-6), (cls, name)
            assert all(float(moved[j]) == pytest.approx(float(human[CORE_CONSTANTS[j]]), rel=1e-12)
                       for j in range(len(CORE_CONSTANTS)) if j != i)
        # gamma stays inside the monostable range whatever the offset
        big = dict(th, **{f"z_core_{cls}": jnp.asarray([0.0, 0.0, 0.0, 8.0])})
        assert abs(float(m._core(big, cls)[3])) < 0.9


def test_human_rows_do_not_depend_on_the_offsets_and_rodent_and_cell_rows_do(models):
    """Gradient of each row's model quantity with respect to z_core_<class>: zero for every human
    row, non-zero for rows of that class, zero for rows of the other class."""
    m = models["mixed"]
    th = _theta(m, seed=11)
    keys = [f"z_core_{c}" for c in SYSTEM_CLASSES]

    def preds(z):
        return m.terms(dict(th, **z))["pred"]

    jac = jax.jacfwd(preds)({k: th[k] for k in keys})
    seen = set()
    for k, it in enumerate(m.items):
        cls = it.const.get("system_class")
        assert (cls is not None) == (it.observable in CORE_OBSERVABLES), it.evidence_id
        for c in SYSTEM_CLASSES:
            g = np.abs(np.asarray(jac[f"z_core_{c}"][k])).max()
            if cls != c:
                assert g == 0.0, (it.evidence_id, c, g)
            else:
                assert g > 0.0, (it.evidence_id, c)
                seen.add((it.study_id, c))
    # the cell-culture rows among them: Hara 2019 (NAMPT overexpression) and deng2021 (bEnd.3 cells)
    assert {("hara2019", "cell"), ("deng2021", "cell"), ("yoshino2011", "rodent"), ("wang2021_aia", "rodent")} <= seen


def test_system_class_comes_from_route_and_matrix():
    assert system_class_of("in_vitro", "cells") == "cell"
    assert system_class_of(None, "cells") == "cell"
    assert system_class_of("oral", "PBMC") == "rodent"
    assert system_class_of(float("nan"), "jejunum_ileum") == "rodent"
