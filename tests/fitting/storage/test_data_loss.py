"""Issue #19, the data-loss reproduction: a folder holding a user's file given as ``--out``.

Before the output contract, ``atomic_dir`` moved such a folder aside, put the new result in its
place and deleted the old folder: ``mythesis/chapter1.tex`` was gone. These tests use only the
API that existed then (``atomic_dir(out)``, the command line), so they fail on that code.
"""

from __future__ import annotations

import pytest

from tests.fitting.storage.contract_helpers import guard_long_work, thesis, tree_digest
from tests.reliability.reliability_helpers import make_run, run_cli


@pytest.fixture(autouse=True)
def _no_long_work(monkeypatch):
    guard_long_work(monkeypatch)


def test_atomic_dir_never_replaces_a_users_folder(tmp_path):
    from nadfit.datasets.errors import UserError
    from nadfit.fitting.storage.outputs import atomic_dir

    out = thesis(tmp_path)
    before = tree_digest(tmp_path)
    with pytest.raises(UserError, match="exists and is not a nadfit run folder"):
        with atomic_dir(out) as tmp:
            (tmp / "summary.json").write_text("{}")
    assert (out / "chapter1.tex").read_text().startswith("\\chapter")
    assert tree_digest(tmp_path) == before


def test_fit_out_thesis_is_refused(tmp_path, capsys):
    out = thesis(tmp_path)
    before = tree_digest(tmp_path)
    rc, _, err = run_cli(capsys, ["fit", "--quick", "--hypothesis", "direct", "--out", out])
    assert rc == 2, err
    assert err.splitlines() == [(f"nadfit: error: {out}: exists and is not a nadfit run folder; "
                                 "choose another --out or remove it")]
    assert tree_digest(tmp_path) == before


def test_compare_out_thesis_is_refused(tmp_path, capsys):
    a = make_run(tmp_path / "runs" / "a", hypothesis="direct")
    b = make_run(tmp_path / "runs" / "b", hypothesis="via-nr")
    out = thesis(tmp_path)
    before = tree_digest(tmp_path)
    rc, _, err = run_cli(capsys, ["compare", a, b, "--out", out, "--smc-runs", "0", "--no-bridge", "--no-psense"])
    assert rc == 2, err
    assert err.splitlines() == [(f"nadfit: error: {out}: exists and is not a nadfit comparison folder; "
                                 "choose another --out or remove it")]
    assert tree_digest(tmp_path) == before


def test_compare_out_one_of_its_inputs_is_refused(tmp_path, capsys):
    a = make_run(tmp_path / "runs" / "a", hypothesis="direct")
    b = make_run(tmp_path / "runs" / "b", hypothesis="via-nr")
    before = tree_digest(tmp_path)
    rc, _, err = run_cli(capsys, ["compare", a, b, "--out", a, "--smc-runs", "0", "--no-bridge", "--no-psense"])
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "is one of this command's inputs" in err, err
    assert tree_digest(tmp_path) == before
