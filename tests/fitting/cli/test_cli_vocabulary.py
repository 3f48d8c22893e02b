"""One CLI vocabulary (issue #18 part 4): every command's options are walked; a missing help text,
two spellings for one concept, one spelling for two kinds of value, or a two-way boolean flag fails."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

#: unit words that must not become part of an option name (the unit goes in a --X-unit option)
UNIT_WORDS = {"mg", "g", "kg", "ml", "s", "sec", "seconds", "min", "minutes", "h", "hours"}
#: irregular plurals (the rest: a trailing "s" is dropped)
IRREGULAR = {"hypotheses": "hypothesis", "analyses": "analysis", "matrices": "matrix"}


def all_commands():
    """(command path, click command) of every leaf command."""
    import typer.main

    from nadfit.fitting.cli import _register, app

    _register()
    stack = [("nadfit", typer.main.get_command(app))]
    while stack:
        path, cmd = stack.pop()
        subs = getattr(cmd, "commands", None)
        if subs:
            stack += [(f"{path} {name}", sub) for name, sub in subs.items()]
        else:
            yield path, cmd


def visible_options():
    """(command path, option name, click parameter) of every visible long option."""
    for path, cmd in all_commands():
        for p in cmd.params:
            if p.param_type_name != "option" or p.name == "help" or getattr(p, "hidden", False):
                continue
            for o in p.opts:
                if o.startswith("--"):
                    yield path, o, p


def concept(option: str) -> str:
    """The concept an option name spells: words singular, unit words and a 'no-' prefix dropped."""
    words = option.lstrip("-").split("-")
    if words and words[0] == "no":
        words = words[1:]
    out = []
    for w in words:
        if w in UNIT_WORDS:
            continue
        w = IRREGULAR.get(w, w)
        if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "is", "us")):
            w = w[:-1]
        out.append(w)
    return "-".join(out)


def test_every_command_option_and_argument_has_help():
    missing = []
    for path, cmd in all_commands():
        if not (cmd.help or "").strip():
            missing.append(f"{path}: command")
        for p in cmd.params:
            if p.name != "help" and not (getattr(p, "help", None) or "").strip():
                missing.append(f"{path}: {p.opts[0] if p.opts else p.name}")
    assert not missing, "no help text: " + ", ".join(missing)


def test_one_spelling_per_concept():
    by_concept: dict[str, set[str]] = {}
    for path, name, _p in visible_options():
        by_concept.setdefault(concept(name), set()).add(name)
    clashes = {c: sorted(names) for c, names in by_concept.items() if len(names) > 1}
    assert not clashes, f"two spellings for one concept: {clashes}"


def test_unit_words_are_not_in_option_names():
    bad = [f"{path} {name}" for path, name, _p in visible_options()
           if set(name.lstrip("-").split("-")) & UNIT_WORDS]
    assert not bad, f"unit in an option name (give --X and --X-unit instead): {bad}"


def test_one_name_one_kind_of_value():
    """An option name is a switch everywhere or takes a value everywhere (not a flag in one command
    and a list of folders in another)."""
    kinds: dict[str, set[tuple]] = {}
    for path, name, p in visible_options():
        kinds.setdefault(name, set()).add(("switch" if p.is_flag else "value", path))
    differ = {n: sorted(k) for n, k in kinds.items() if len({kind for kind, _ in k}) > 1}
    assert not differ, f"one option name, different kinds of value: {differ}"


def test_concept_normalisation_catches_the_old_spellings():
    """The check above would have failed on the spellings of issue #18."""
    assert concept("--day") == concept("--days")
    assert concept("--dose-mg") == concept("--dose")
    assert concept("--hypotheses") == concept("--hypothesis")
    assert concept("--no-bridge") == concept("--bridge")
    assert concept("--doses-per-day") != concept("--dose")


def test_boolean_flags_are_one_way_switches():
    """'--quick/--no-quick', '--no-bridge --no-no-bridge' confuse: a flag has one spelling."""
    two_way = [f"{path} {'/'.join(p.opts + p.secondary_opts)}" for path, cmd in all_commands()
               for p in cmd.params if p.secondary_opts and any(o.startswith("--") for o in p.secondary_opts)]
    assert not two_way, two_way


def test_short_options_mean_the_same_everywhere():
    short: dict[str, set[str]] = {}
    for path, cmd in all_commands():
        for p in cmd.params:
            for s in (o for o in p.opts if re.fullmatch(r"-[A-Za-z]", o)):
                short.setdefault(s, set()).add(p.name)
    assert all(len(v) == 1 for v in short.values()), short


def test_every_listing_and_validation_command_has_json():
    listing = [(path, cmd) for path, cmd in all_commands()
               if path.startswith("nadfit datasets ") and path != "nadfit datasets import-digitised"]
    assert len(listing) >= 4
    for path, cmd in [*listing, *((p, c) for p, c in all_commands() if p in ("nadfit predict", "nadfit simulate",
                                                                           "nadfit bench", "nadfit plan-trial"))]:
        assert any("--json" in p.opts for p in cmd.params), path


def test_commands_that_print_progress_take_quiet_and_verbose():
    for name in ("fit", "compare", "run-all", "report", "report-compare", "sbc", "recovery", "compare-calibration",
                 "sweep"):
        cmd = dict(all_commands())[f"nadfit {name}"]
        opts = {o for p in cmd.params for o in p.opts}
        assert {"--quiet", "-q", "--verbose", "-v"} <= opts, name


def test_deprecated_spellings_are_hidden_and_rewritten(capsys):
    from nadfit.fitting.cli.options import DEPRECATED_OPTIONS, rewrite_deprecated

    commands = dict(all_commands())
    for command, table in DEPRECATED_OPTIONS.items():
        opts = {o for p in commands[f"nadfit {command}"].params for o in p.opts}
        for old, new in table.items():
            assert old not in opts and new in opts, (command, old, new)
    argv, notes = rewrite_deprecated(["predict", "RUN", "--dose-mg", "300", "--day=14", "--json"])
    assert argv == ["predict", "RUN", "--dose", "300", "--days=14", "--json"]
    assert notes == ["--dose-mg is deprecated; use --dose (same meaning)", "--day is deprecated; use --days (same meaning)"]
    assert rewrite_deprecated(["fit", "--day", "3"]) == (["fit", "--day", "3"], [])  # only the command's own
    assert rewrite_deprecated(["predict", "--", "--day"])[0] == ["predict", "--", "--day"]


def test_old_spelling_still_works_with_a_note(capsys):
    from nadfit.fitting.cli import main

    study = REPO / "datasets" / "studies" / "airhart2017"
    rc = main(["predict", str(study), "--compound", "NMN", "--dose-mg", "300", "--day", "14"])
    err = capsys.readouterr().err
    assert "--dose-mg is deprecated; use --dose" in err and "--day is deprecated; use --days" in err
    assert rc == 2 and "not a nadfit run folder" in err  # parsed as the new spelling, then the folder refused


def test_dose_unit(capsys):
    from nadfit.datasets.errors import UserError
    from nadfit.fitting.cli.options import dose_mg_per_day

    assert dose_mg_per_day(300.0, "mg/day") == 300.0
    assert dose_mg_per_day(1.5, "g/day") == pytest.approx(1500.0)
    with pytest.raises(UserError, match="--dose-unit must be mg/day or g/day"):
        dose_mg_per_day(1.0, "mg/kg/day")
    from nadfit.fitting.cli import main

    study = REPO / "datasets" / "studies" / "airhart2017"
    main(["predict", str(study), "--compound", "NR", "--dose", "60", "--dose-unit", "g/day", "--days", "14"])
    assert "outside the studied human range" in capsys.readouterr().err  # 60 g/day = 60000 mg/day


def test_argument_errors_come_before_heavy_imports():
    """A mistyped option value is refused without importing JAX or PyMC (5-6 s)."""
    bad = [["simulate", "--compound", "XYZ", "--dose", "300", "--days", "10"],
           ["predict", "RUN", "--compound", "NMN", "--dose", "300", "--dose-unit", "mg/kg", "--days", "3"],
           ["sbc", "--hypothesis", "nope", "--n-sims", "2", "--out", "X"],
           ["compare-calibration", "--hypothesis", "direct", "--out", "X"],
           ["recovery", "--hypothesis", "nope", "--out", "X"],
           ["fit", "--quiet", "--verbose", "--out", "X"]]
    code = ("import sys, json; from nadfit.fitting.cli import main\n"
            f"rcs = [main(a) for a in {bad!r}]\n"
            "print(json.dumps([rcs, 'jax' in sys.modules, 'pymc' in sys.modules]))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    import json

    rcs, jax_loaded, pymc_loaded = json.loads(res.stdout.strip().splitlines()[-1])
    assert rcs == [2] * len(bad), res.stderr
    assert not jax_loaded and not pymc_loaded, res.stderr


def test_readme_commands_table_uses_the_current_spellings():
    """Every option in README's Commands table is a visible option of that command."""
    text = (REPO / "README.md").read_text()
    table = text[text.index("## Commands"):]
    table = table[:table.index("\n\n", table.index("| command |"))]
    commands = dict(all_commands())
    checked = 0
    for usage in re.findall(r"^\| `nadfit ([^`]+)`", table, flags=re.M):
        name = usage.split()[0]
        cmd = commands.get(f"nadfit {name}")
        if cmd is None:  # the datasets group row
            continue
        opts = {o for p in cmd.params if not getattr(p, "hidden", False) for o in p.opts}
        for opt in re.findall(r"--[a-z][a-z0-9-]*", usage):
            assert opt in opts, f"README: nadfit {name} {opt} is not an option"
            checked += 1
    assert checked >= 30
