"""nadfit evidence/data layer: study folders, vocabularies, validation and the loading API.

See ``datasets/README.md`` for the layout and the JSON shapes of ``nadfit datasets``.
"""

from nadfit.datasets.load import (
    evidence_fingerprint,
    load_evidence,
    load_gaps,
    load_kinetic_priors,
    load_studies,
    load_study,
)
from nadfit.datasets.schema import Problem, StudyMeta
from nadfit.datasets.validate import validate_paths

__all__ = [
    "Problem", "StudyMeta", "evidence_fingerprint", "load_evidence", "load_gaps",
    "load_kinetic_priors", "load_studies", "load_study", "validate_paths",
]
