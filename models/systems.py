"""Which biological system an evidence row observes (no JAX: light to import for reports).

* human in vivo: a row whose observable is a quantity of people (the human blood model);
  observables named ``human_*``;
* the other rows that use the core constants (``models.model.CORE_OBSERVABLES``) belong to a
  system class with its own offsets from the human constants: ``cell`` for cell cultures
  (route ``in_vitro`` or matrix ``cells``, incl. human cell lines), ``rodent`` for mouse and rat
  tissues in vivo.
"""

from __future__ import annotations

HUMAN_PREFIX = "human_"


def is_human_observable(observable: str) -> bool:
    """Does a row observe a quantity of people in vivo (the human blood model)?"""
    return str(observable).startswith(HUMAN_PREFIX)


def system_class_of(route, matrix) -> str:
    """``cell`` for a cell-culture row (route ``in_vitro`` or matrix ``cells``), else ``rodent``
    (the non-human in-vivo rows: mouse and rat tissues)."""
    route = "" if route is None else str(route).strip().lower()
    matrix = "" if matrix is None else str(matrix).strip().lower()
    return "cell" if route == "in_vitro" or matrix == "cells" else "rodent"
