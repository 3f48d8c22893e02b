"""Property: a random pre-existing tree at the output path is never modified unless it is a
complete nadfit output of the same kind (or empty).

The trees are drawn from names and contents that nadfit's own markers are made of (``COMPLETE``,
``.nadfit-output``, ``summary.json``, ``sweep.json``, ``fits/``, ...), mixed with a user's files,
so that near-misses are common. Whether a tree may be replaced is decided here by ``may_replace``,
written from the contract as stated in the README, not by calling the library's recogniser.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nadfit.datasets.errors import UserError
from nadfit.fitting.storage.outputs import atomic_dir, claim_output_dir
from tests.fitting.storage.contract_helpers import tree_digest

ATOMIC = ("run", "comparison", "calibration", "recovery", "task")
RESUMABLE = ("sweep", "sbc", "run-all")
KINDS = ATOMIC + RESUMABLE
DIR = None  # tree value of a folder

NAMES = ["COMPLETE", ".nadfit-output", "summary.json", "comparison.json", "calibration.json", "recovery.json",
         "result.json", "sweep.json", "fits", "fits-wider-priors", "comparison", "direct", "mixed",
         "chapter1.tex", ".hidden", "posterior.nc"]
TEXTS = ["nadfit:run\n", "nadfit:comparison\n", "nadfit:calibration", "nadfit:recovery\n", "nadfit:task\n",
         "nadfit:sweep\n", "nadfit:bogus\n", "nadfit:\n", "ok\n", "ok", " ok \n", "OK\n", "", "{}", "[1]",
         '{"schema": "nadfit.run/1"}', '{"schema": "nadfit.comparison/1"}', '{"schema": "nadfit.calibration/1"}',
         '{"schema": "nadfit.recovery/1"}', '{"schema": "nadfit.run/0"}', '{"value": 1}',
         '{"schema": "nadfit.sweep/1", "spec": "s.toml"}', '{"schema": "nadfit.sweep/1", "spec": "nadfit sbc"}',
         '{"kind": "sweep"}', '{"kind": "sbc"}', '{"kind": "run-all"}', '{"kind": "run"}', '{"kind": 3}',
         "\\chapter{One}\n"]
content = st.one_of(st.sampled_from(TEXTS).map(str.encode), st.binary(max_size=40))
relpath = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)
random_tree = st.dictionaries(relpath, st.one_of(st.just(DIR), content), max_size=10)


def _atomic_output(kind: str, legacy: bool) -> dict:
    doc = {"run": "summary.json", "comparison": "comparison.json", "calibration": "calibration.json",
           "recovery": "recovery.json", "task": "result.json"}[kind]
    schema = {"task": None}.get(kind, f"nadfit.{kind}/1")
    return {"COMPLETE": b"ok\n" if legacy else f"nadfit:{kind}\n".encode(),
            doc: json.dumps({"schema": schema} if schema else {"value": 1}).encode()}


@st.composite
def output_like_tree(draw) -> dict:
    """A nadfit output of some kind, maybe legacy, maybe with a few random changes."""
    kind = draw(st.sampled_from(KINDS))
    legacy = draw(st.booleans())
    if kind in ATOMIC:
        tree = _atomic_output(kind, legacy)
    elif kind == "run-all" and legacy:
        tree = {}
        for h in draw(st.lists(st.sampled_from(["direct", "mixed"]), min_size=1, max_size=2, unique=True)):
            tree |= {f"fits/{h}/{k}": v for k, v in _atomic_output("run", draw(st.booleans())).items()}
        if draw(st.booleans()):
            tree |= {f"comparison/{k}": v for k, v in _atomic_output("comparison", draw(st.booleans())).items()}
    elif legacy:
        spec = "nadfit sbc" if kind == "sbc" else "s.toml"
        tree = {"sweep.json": json.dumps({"schema": "nadfit.sweep/1", "spec": spec}).encode()}
    else:
        tree = {".nadfit-output": json.dumps({"kind": kind}).encode()}
    tree |= draw(st.dictionaries(relpath, st.one_of(st.just(DIR), content), max_size=3))
    return tree


trees = st.one_of(random_tree, output_like_tree())


# --- the contract, written out independently ------------------------------------------------------
def _normalise(tree: dict) -> dict:
    """The tree as it ends up on disk: entries below a file are dropped, parents become folders."""
    out: dict = {}
    for path in sorted(tree, key=lambda p: (p.count("/"), p)):
        parts = path.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts))]
        if any(out.get(p, DIR) is not DIR for p in prefixes):
            continue
        for p in prefixes:
            out.setdefault(p, DIR)
        if path not in out:
            out[path] = tree[path]
    return out


def _json_object(data) -> dict | None:
    if data is DIR or data is None:
        return None
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def _sub(tree: dict, prefix: str) -> dict:
    return {k[len(prefix) + 1:]: v for k, v in tree.items() if k.startswith(prefix + "/")}


def kind_of(tree: dict) -> str | None:
    """The README's rule: COMPLETE 'nadfit:<kind>' (or legacy 'ok' + the kind's document), the
    '.nadfit-output' marker, a legacy sweep.json, or a legacy run-all folder; a COMPLETE or
    .nadfit-output that is not a file means the folder is not nadfit's."""
    top = {k: v for k, v in tree.items() if "/" not in k}
    if top.get("COMPLETE", 0) is DIR or top.get(".nadfit-output", 0) is DIR:
        return None  # a marker name that is not a file
    if top.get("COMPLETE", DIR) is not DIR:
        try:
            text = top["COMPLETE"].decode("utf-8")
        except UnicodeDecodeError:
            return None
        if text.startswith("nadfit:"):
            k = text[len("nadfit:"):].strip()
            return k if k in ATOMIC else None
        if text.strip() == "ok":
            for k, doc, schema in (("run", "summary.json", "nadfit.run/1"),
                                   ("comparison", "comparison.json", "nadfit.comparison/1"),
                                   ("calibration", "calibration.json", "nadfit.calibration/1"),
                                   ("recovery", "recovery.json", "nadfit.recovery/1"), ("task", "result.json", None)):
                obj = _json_object(top.get(doc))
                if obj is not None and (schema is None or obj.get("schema") == schema):
                    return k
        return None
    if top.get(".nadfit-output", DIR) is not DIR:
        obj = _json_object(top[".nadfit-output"])
        k = obj.get("kind") if obj else None
        return k if k in RESUMABLE else None
    manifest = _json_object(top.get("sweep.json"))
    if manifest is not None and manifest.get("schema") == "nadfit.sweep/1":
        return "sbc" if manifest.get("spec") == "nadfit sbc" else "sweep"
    parts = {"fits": "run", "fits-wider-priors": "run", "comparison": "comparison"}
    if top and set(top) <= set(parts) and all(v is DIR for v in top.values()):
        for name in top:
            sub = _sub(tree, name)
            if name == "comparison":
                if kind_of(sub) != "comparison":
                    return None
                continue
            children = {k for k in sub if "/" not in k}
            if not children or any(sub[c] is not DIR or kind_of(_sub(sub, c)) != "run" for c in children):
                return None
        return "run-all"
    return None


def may_replace(tree: dict, kind: str) -> bool:
    return not tree or kind_of(tree) == kind


def _write(root: Path, tree: dict) -> None:
    root.mkdir()
    for path, data in sorted(tree.items()):
        p = root / path
        if data is DIR:
            p.mkdir(parents=True, exist_ok=True)
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=trees, kind=st.sampled_from(KINDS))
def test_random_trees_are_kept_unless_same_kind(tmp_path_factory, tree, kind):
    tree = _normalise(tree)
    base = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp()))
    try:
        out = base / "out"
        _write(out, tree)
        (base / "sibling.txt").write_text("mine\n")
        before = tree_digest(base)
        try:
            if kind in ATOMIC:
                with atomic_dir(out, kind, notify=lambda m: None) as tmp:
                    (tmp / "new.txt").write_text("new")
            else:
                claim_output_dir(out, kind, notify=lambda m: None)
        except UserError as err:
            assert not may_replace(tree, kind), f"refused a replaceable {kind} output: {err}"
            assert tree_digest(base) == before, "a refused output was modified"
            return
        assert may_replace(tree, kind), f"accepted a tree that is not a {kind} output: {sorted(tree)}"
        assert (base / "sibling.txt").read_text() == "mine\n"
        assert sorted(p.name for p in base.iterdir()) == ["out", "sibling.txt"]  # no leftovers
        if kind in ATOMIC:
            assert sorted(p.name for p in out.iterdir()) == ["COMPLETE", "new.txt"]
        else:  # resumable: everything that was there stays, the marker is added
            for path, data in tree.items():
                if data is not DIR and path != ".nadfit-output":
                    assert (out / path).read_bytes() == data
            assert json.loads((out / ".nadfit-output").read_text()) == {"kind": kind} or \
                tree.get(".nadfit-output") is not None
    finally:
        shutil.rmtree(base, ignore_errors=True)
