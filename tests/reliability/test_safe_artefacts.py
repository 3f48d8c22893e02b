"""Loading never executes anything: netCDF attributes stay strings, JSON is parsed with json."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import pytest
from reliability_helpers import make_run, write_posterior

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("datasets", "models", "fitting", "reports")


class Boom:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_pickle_looking_attrs_stay_strings(tmp_path, monkeypatch):
    from nadfit.fitting.inference.runs import load_posterior

    monkeypatch.chdir(tmp_path)
    blob = pickle.dumps(Boom(), protocol=0).decode("latin-1")
    run = make_run(tmp_path / "run")
    write_posterior(run / "posterior.nc", "direct",
                    extra_attrs={"config": blob, "versions": "cos\nsystem\n(S'touch PWNED'\ntR.",
                                 "evidence_ids": "__import__('os').system('touch PWNED')"})
    dt = load_posterior(run)
    for key in ("config", "versions", "evidence_ids"):
        assert isinstance(dt.attrs[key], str)
    assert dt.attrs["config"] == blob
    assert not (tmp_path / "PWNED").exists()


def test_summary_with_code_is_just_data(tmp_path, monkeypatch):
    import json

    from nadfit.fitting.inference.runs import load_summary

    monkeypatch.chdir(tmp_path)
    run = make_run(tmp_path / "run")
    s = json.loads((run / "summary.json").read_text())
    s["hypothesis"] = "__import__('os').system('touch PWNED')"
    s["notes"] = {"py/object": "os.system", "!!python/object/apply:os.system": ["touch PWNED"]}
    (run / "summary.json").write_text(json.dumps(s))
    got = load_summary(run)
    assert got["hypothesis"].startswith("__import__") and not (tmp_path / "PWNED").exists()


def _sources():
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            yield path, path.read_text()


UNSAFE = [
    (re.compile(r"^\s*(import pickle|from pickle|import dill|import cloudpickle|import joblib|import shelve|import marshal)",
                re.M), "pickle-family import"),
    (re.compile(r"\bpickle\."), "pickle use"),
    (re.compile(r"(?<![\w.])eval\("), "eval("),
    (re.compile(r"(?<![\w.])exec\("), "exec("),
    (re.compile(r"yaml\.load\((?![^)]*SafeLoader)"), "yaml.load( without SafeLoader"),
    (re.compile(r"yaml\.(unsafe_load|full_load|load_all)\("), "unsafe yaml loader"),
    (re.compile(r"allow_pickle\s*=\s*True"), "numpy allow_pickle=True"),
]


@pytest.mark.parametrize("pattern,what", UNSAFE, ids=[w for _, w in UNSAFE])
def test_no_unsafe_deserialisation_in_package_sources(pattern, what):
    hits = [f"{p.relative_to(REPO)}:{text[:m.start()].count(chr(10)) + 1}"
            for p, text in _sources() for m in pattern.finditer(text)]
    assert hits == [], f"{what} found in: {hits}"


def test_the_source_scan_sees_the_packages():
    files = [p for p, _ in _sources()]
    assert any(p.name == "runs.py" for p in files) and len(files) > 20
