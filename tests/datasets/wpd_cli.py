"""Helpers for the WebPlotDigitizer import tests: run ``nadfit datasets import-digitised`` on a copy
of the yi2022 study (a 60-day trial) and check the one-line error contract."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

from nadfit.fitting.cli import main

REPO = Path(__file__).resolve().parents[2]
WPD = Path(__file__).resolve().parent / "wpd"
SYN = WPD / "synthetic"
ERROR_RE = re.compile(r"^nadfit: error: \S.*: .+$")


def study_copy(tmp_path: Path) -> Path:
    """A fresh copy of the yi2022 study folder (``<tmp>/runN/yi2022``) for each call."""
    k = 0
    while (tmp_path / f"run{k}").exists():
        k += 1
    dst = tmp_path / f"run{k}" / "yi2022"
    shutil.copytree(REPO / "datasets" / "studies" / "yi2022", dst)
    return dst


def argv(inp, out, **over) -> list[str]:
    """CLI arguments; ``over`` maps option names (``"--series"``) to values, True for flags, None to drop."""
    a = {"--study": "yi2022", "--figure": "Fig 2B", "--x-unit": "day", "--y-unit": "nmol/L",
         "--analyte": "blood NAD concentration", "--matrix": "blood_unspecified",
         "--compound": "NMN", "--dose": "300", "--dose-unit": "mg/day",
         "--group": "Arm A: NMN 300 mg/day", "--out": str(out)}
    a.update(over)
    args = ["datasets", "import-digitised", str(inp)]
    for k, v in a.items():
        if v is True:
            args.append(k)
        elif v is not None:
            args += [k, str(v)]
    return args


class Result:
    def __init__(self, rc, out, err, path):
        self.rc, self.out, self.err, self.path = rc, out, err, path

    def rows(self) -> list[dict]:
        with open(self.path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))


def run(tmp_path, capsys, inp, **over) -> Result:
    """Run the import into a fresh study copy (or into ``out=...`` when given)."""
    out = over.pop("out", None)
    out = Path(out) if out is not None else study_copy(tmp_path) / "evidence_digitised.csv"
    rc = main(argv(inp, out, **over))
    cap = capsys.readouterr()
    return Result(rc, cap.out, cap.err, out)


def assert_refused(res: Result, fragment: str, where: str | None = None) -> str:
    """Exit 2, exactly one ``nadfit: error: file:row:field: message`` line, nothing written."""
    assert res.rc == 2, (res.out, res.err)
    lines = res.err.splitlines()
    assert len(lines) == 1, res.err
    assert ERROR_RE.match(lines[0]), lines[0]
    assert "Traceback" not in res.err + res.out
    assert fragment in lines[0], lines[0]
    if where is not None:
        assert lines[0].startswith(f"nadfit: error: {where}"), lines[0]
    assert not res.path.exists(), "a refused import must not write --out"
    assert not list(res.path.parent.glob(".tmp-*"))
    return lines[0]
