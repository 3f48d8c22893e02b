"""Option helpers shared by several commands (one vocabulary)."""

from __future__ import annotations

from typing import Optional


def split_ids(values: Optional[list[str]]) -> list[str]:
    """``--evidence a,b --evidence c`` -> ["a", "b", "c"] (study or evidence ids)."""
    out: list[str] = []
    for v in values or []:
        out += [t.strip() for t in v.split(",") if t.strip()]
    return out


EVIDENCE_HELP = "keep only these study/evidence ids (comma-separated or repeated)"
EXCLUDE_HELP = "leave out these study/evidence ids (comma-separated or repeated)"
