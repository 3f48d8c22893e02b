"""Shared fixtures for the model verification tests (tests/models)."""

from __future__ import annotations

import pytest
from model_helpers import HYPOTHESES


@pytest.fixture(scope="session")
def evidence():
    from nadfit.datasets import load_evidence

    return load_evidence()


@pytest.fixture(scope="session")
def models(evidence):
    from nadfit.models.model import EvidenceModel

    return {h: EvidenceModel(h, evidence) for h in HYPOTHESES}
