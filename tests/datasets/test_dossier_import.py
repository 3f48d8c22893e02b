"""Dossier importer: a re-import keeps what was added to the shipped files after it."""

from __future__ import annotations

from nadfit.datasets.importers.dossier import keep_extra


def test_keep_extra_preserves_rows_added_after_the_dossier_import():
    generated = [{"gap_id": "H1", "what": "new"}, {"gap_id": "H2", "what": "x"}]
    shipped = [{"gap_id": "H1", "what": "old"}, {"gap_id": "AD09", "what": "search"}]
    assert keep_extra(generated, shipped, "gap_id") == generated + [{"gap_id": "AD09", "what": "search"}]
