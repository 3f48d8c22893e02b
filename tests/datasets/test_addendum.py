"""Addendum of 2026-11-30 (issue #14 item 6): the encoded rows (30-day NMN trial with both reported
n), what was left out and why, and no secondary row scored before its widened likelihood exists."""

from __future__ import annotations

import pytest

from nadfit import datasets
from nadfit.models.model import load_evidence_map


@pytest.fixture(scope="module")
def ev():
    return datasets.load_evidence()


def test_thirty_day_trial_arm_means_with_both_n(ev):
    t = ev[ev.study_id == "nmn_exercise_30d"]
    assert (t.grade == "secondary").all()
    arms = {"placebo": (23.8, 5.5, 25, 25), "NMN 500 mg/day": (41.7, 13.0, 25, 19),
            "NMN 1000 mg/day": (58.8, 21.1, 25, 22)}
    for group, (mean, sd, n_review, n_legend) in arms.items():
        g = t[(t.group == group) & (t.analyte == "NAD+")]
        m = g[g.statistic == "mean"].iloc[0]
        s = g[g.statistic == "sd"].iloc[0]
        assert (m.value, s.value) == (mean, sd)
        assert m.unit == s.unit == "uM" and m.matrix == "whole_blood" and m.duration_days == 30
        assert m.n == s.n == min(n_review, n_legend)  # the smaller reported n
        if n_review != n_legend:
            assert f"{n_review} in the review" in m.note and f"{n_legend} in the company figure legend" in m.note
        counts = t[(t.group == group) & (t.statistic == "n_total")]
        assert sorted(counts.value) == sorted([n_review, n_legend])  # both n, each with its own source
        assert set(counts.source_url) == {
            "https://pmc.ncbi.nlm.nih.gov/articles/PMC11205942/table/metabolites-14-00341-t001",
            "https://celfull.com/related-cases/53.html"}


def test_left_out_items_are_not_encoded_and_are_recorded(ev):
    # AD10 (Pencina 2023 review row) and AD12 (review ref. [95]) are not encoded ...
    assert not ev[(ev.study_id == "pencina2023") & (ev.unit == "ng/mL")].shape[0]
    assert not ev["value"].isin([26.83, 41.43, 17.8, 19.4]).any()
    # ... and gaps.csv says why
    g = datasets.load_gaps().set_index("gap_id")
    assert "Not encoded" in g.loc["AD10", "what"] and g.loc["AD10", "study_id"] == "pencina2023"
    assert "Not encoded" in g.loc["AD12", "what"] and "no placebo arm" in g.loc["AD12", "what"]
    assert g.loc["AD09", "priority"] == "A" and "queries" in g.loc["AD09", "what"]


def test_scored_secondary_rows_carry_the_widened_likelihood(ev):
    """Secondary copies enter the likelihood only with the widening of issue #14: numeric rows
    (their SDs x secondary_sd_factor); no binary secondary row is scored (no widened event yet)."""
    from nadfit.models.model import EvidenceModel
    from nadfit.models.observation import ObservationSettings

    scored = set(load_evidence_map()["likelihood"])
    secondary = set(ev.loc[ev.grade == "secondary", "evidence_id"])
    assert secondary & scored == {"EV227", "EV242", "EV248", "EV250"}
    m = EvidenceModel("mixed", ev)
    factor = ObservationSettings().secondary_sd_factor
    for it in m.items:
        assert it.widen == (factor if it.evidence_id in secondary else 1.0), it.evidence_id
        if it.evidence_id in secondary:
            assert not it.binary
