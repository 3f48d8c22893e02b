"""models/evidence_map.yaml covers the shipped evidence exactly once and refers only to things
that exist."""

from __future__ import annotations

from collections import Counter

from nadfit.models.model import load_evidence_map
from nadfit.models.scenarios import SCENARIO_NAMES

SECTIONS = ("likelihood", "redundant", "design", "structural", "not_modelled", "outside_model", "pending")


def _all_ids(mapping):
    ids = []
    for section in SECTIONS:
        ids += list((mapping.get(section) or {}).keys())
    return ids


def test_sections_known():
    assert set(load_evidence_map()) <= set(SECTIONS) | {"claims"}


def test_claims_refer_to_scored_rows():
    """Every row of a declared claim is a likelihood row, and no row is in two claims."""
    m = load_evidence_map()
    scored = set(m["likelihood"])
    seen = Counter()
    for cid, spec in m["claims"].items():
        for eid in spec["rows"]:
            assert eid in scored, (cid, eid)
            seen[eid] += 1
    assert not [e for e, c in seen.items() if c > 1]


def test_every_row_mapped_exactly_once(evidence):
    counts = Counter(_all_ids(load_evidence_map()))
    dup = sorted(k for k, v in counts.items() if v > 1)
    assert not dup, f"mapped more than once: {dup}"
    shipped = set(evidence["evidence_id"])
    assert not sorted(shipped - set(counts)), f"not mapped: {sorted(shipped - set(counts))}"
    assert not sorted(set(counts) - shipped), f"mapped but not shipped: {sorted(set(counts) - shipped)}"


def test_references_exist(evidence):
    m = load_evidence_map()
    shipped = set(evidence["evidence_id"])
    for eid, spec in m["likelihood"].items():
        assert eid in shipped, eid
        for key in ("scenario", "placebo", "reference"):
            if key in spec:
                assert spec[key] == "none" or spec[key] in SCENARIO_NAMES, (eid, key, spec[key])
        for s in spec.get("scenarios", []):
            assert s in SCENARIO_NAMES, (eid, s)
        for key in ("n_arm", "n_placebo", "factor_from", "n_total", "placebo_mean", "placebo_sd", "sd"):
            refs = spec.get(key, [])
            for r in refs if isinstance(refs, list) else [refs]:
                assert r in shipped, (eid, key, r)
    for eid, (target, _reason) in (m.get("redundant") or {}).items():
        assert target in shipped, (eid, target)
