"""The installed layout: one ``nadfit`` namespace, import layers without circles, package data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = REPO.parent / "shared" / "tools" / "layers.py"


@pytest.mark.skipif(not LAYERS.exists(), reason="../shared/tools/layers.py is not beside this checkout")
def test_import_layers_have_no_upward_imports_and_no_circles():
    out = subprocess.run([sys.executable, str(LAYERS), "--root", str(REPO)], capture_output=True, text=True)
    lines = out.stdout.strip().splitlines()
    assert out.returncode == 0 and len(lines) == 1, out.stdout
    assert lines[0].endswith("0 upward, 0 circles"), lines[0]


def test_generic_top_level_names_are_not_nadfit(tmp_path):
    """``import datasets`` (a widely used package's name) must not find nadfit's evidence layer, and
    the package finds its own data (templates, evidence map, studies) from any folder — the test
    suite itself runs with the repository on sys.path, which would hide a bare ``"reports"``."""
    code = ("import importlib.util as u, sys\n"
            "for name in ('datasets', 'models', 'fitting', 'reports'):\n"
            "    spec = u.find_spec(name)\n"
            "    if spec is not None and spec.origin and 'nadfit' in open(spec.origin).read(2000):\n"
            "        sys.exit(f'{name} resolves to {spec.origin}')\n"
            "import nadfit.datasets, nadfit.models, nadfit.reports, nadfit.fitting.cli\n"
            "assert not any(p in ('', '.') or p.rstrip('/').endswith('/main') for p in sys.path[1:]), sys.path\n"
            "from nadfit.reports.render import _env\n"
            "_env().get_template('run.html.j2'); _env().get_template('comparison.html.j2')\n"
            "from nadfit.models.model import load_evidence_map\n"
            "assert load_evidence_map()['likelihood']\n"
            "from nadfit.datasets import load_evidence\n"
            "assert len(load_evidence()) > 200\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr + out.stdout


def test_wheel_holds_the_namespace_and_every_study(tmp_path):
    """A regular (non-editable) install gets ``nadfit/...`` only, with every study folder's files."""
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(REPO)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("nadfit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {"nadfit", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}, tops
    studies = sorted(p.name for p in (REPO / "datasets" / "studies").iterdir() if (p / "study.yaml").exists())
    for sid in studies:
        assert f"nadfit/datasets/studies/{sid}/study.yaml" in names, sid
        assert f"nadfit/datasets/studies/{sid}/evidence.csv" in names, sid
    for f in ("nadfit/models/evidence_map.yaml", "nadfit/datasets/gaps.csv", "nadfit/datasets/kinetic_priors.csv",
              "nadfit/reports/templates/run.html.j2", "nadfit/fitting/cli/__init__.py"):
        assert f in names, f
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)
