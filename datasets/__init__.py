"""nadfit evidence/data layer: study folders, vocabularies, validation and the loading API.

See ``datasets/README.md`` for the layout and the JSON shapes of ``nadfit datasets``.

The loading API is imported on first use (PEP 562 ``__getattr__``), so that light modules of
this package (``nadfit.datasets.errors``, used by every command to report a user's mistake) do
not pull in pandas and pint: a command can check its arguments in well under a second.
"""

from __future__ import annotations

import importlib

#: public name -> the module that defines it
_EXPORTS = {
    "evidence_fingerprint": "load", "load_evidence": "load", "load_gaps": "load",
    "load_kinetic_priors": "load", "load_studies": "load", "load_study": "load",
    "Problem": "schema", "StudyMeta": "schema", "validate_paths": "validate",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        try:  # a submodule (``nadfit.datasets.units``)
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":  # a dependency of a real submodule is missing
                raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
