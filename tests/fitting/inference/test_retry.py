"""A fit that ends with divergent transitions is sampled once more at retry_target_accept
(``inference.fit.sample_with_retry``); the run records both attempts (no NUTS here: a stand-in
sampler returns traces with chosen divergence counts)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from rich.console import Console

from nadfit.datasets.errors import UserError
from nadfit.fitting.inference.config import FitConfig, config_from_file, make_config
from nadfit.fitting.inference.fit import sample_with_retry
from nadfit.reports.conventions import retry_note


def _sampler(divergences):
    """A stand-in for sample_posterior returning, call by call, traces with these divergence
    counts; it records the configs it was called with."""
    calls = []

    def sample(pm_model, cfg, **_kw):
        k = len(calls)
        calls.append(cfg)
        div = np.zeros((2, 50), bool)
        div.ravel()[: divergences[k]] = True
        return {"sample_stats": {"diverging": div}, "call": k}

    return sample, calls


def test_no_divergence_keeps_the_first_attempt():
    sample, calls = _sampler([0])
    events = []
    dt, used, attempts = sample_with_retry(None, FitConfig(), on_progress=events.append, sample=sample)
    assert dt["call"] == 0 and used.target_accept == FitConfig().target_accept and len(calls) == 1
    assert [a["divergences"] for a in attempts] == [0] and events == []
    assert retry_note(attempts) is None


def test_divergences_give_one_more_attempt_at_the_retry_target_with_the_same_seed():
    sample, calls = _sampler([1, 0, 0])
    events = []
    cfg = FitConfig(seed=7, target_accept=0.9, retry_target_accept=0.97)
    dt, used, attempts = sample_with_retry(None, cfg, on_progress=events.append, sample=sample)
    assert dt["call"] == 1 and len(calls) == 2
    assert [c.target_accept for c in calls] == [0.9, 0.97] and [c.seed for c in calls] == [7, 7]
    assert used.target_accept == 0.97 and cfg.target_accept == 0.9  # the user's config is not changed
    assert [(a["target_accept"], a["divergences"]) for a in attempts] == [(0.9, 1), (0.97, 0)]
    assert events == [{"phase": "retry", "divergences": 1, "target_accept": 0.9, "retry_target_accept": 0.97}]
    note = retry_note(attempts)
    assert "0.97" in note and "1 divergent transition at 0.9" in note and "(0 divergences)" in note


def test_only_one_retry_and_none_disables_it():
    sample, calls = _sampler([3, 2, 0])
    dt, used, attempts = sample_with_retry(None, FitConfig(), sample=sample)
    assert dt["call"] == 1 and len(calls) == 2 and attempts[-1]["divergences"] == 2  # gated on this one
    assert "3 divergent transitions" in retry_note(attempts)
    sample, calls = _sampler([3, 0])
    dt, used, attempts = sample_with_retry(None, FitConfig(retry_target_accept=None), sample=sample)
    assert dt["call"] == 0 and len(calls) == 1 and len(attempts) == 1


def test_quick_fits_are_not_retried():
    assert make_config(quick=True).retry_target_accept is None
    assert make_config().retry_target_accept == FitConfig().retry_target_accept > FitConfig().target_accept


@pytest.mark.parametrize("value", [0.95, 0.9, 1.0, "0.99", True])
def test_retry_target_must_lie_above_target_accept_and_below_one(value):
    cfg = FitConfig(target_accept=0.95, retry_target_accept=value)
    with pytest.raises(UserError, match="retry_target_accept must be above target_accept"):
        cfg.validate()


def test_a_config_file_can_switch_the_retry_off(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("retry_target_accept = false\n")
    assert config_from_file(p).retry_target_accept is None
    p.write_text("retry_target_accept = 0.5\n")
    with pytest.raises(UserError) as err:
        config_from_file(p)
    assert err.value.field == "retry_target_accept" and "c.toml" in str(err.value.file)


def test_progress_says_why_the_fit_samples_again():
    from nadfit.fitting.cli.progress import FitProgress

    ev = {"phase": "retry", "divergences": 1, "target_accept": 0.95, "retry_target_accept": 0.99}
    buf = io.StringIO()
    cb = FitProgress(Console(file=buf, force_terminal=False, width=200)).callback("fit direct")
    for e in ({"phase": "compile"}, ev, {"phase": "compile"}, {"phase": "done"}):
        cb(e)
    assert "fit direct: 1 divergent transition at target_accept 0.95; sampling again at 0.99" in buf.getvalue()

    def draws(divergences):
        return [{"phase": "draw", "chains": 4, "chains_started": 4, "done": d, "total": 400, "divergences":
                 divergences if d == 400 else None, "elapsed_s": d / 10, "eta_s": (400 - d) / 10}
                for d in (100, 200, 300, 400)]

    buf = io.StringIO()
    cb = FitProgress(Console(file=buf, force_terminal=False, width=200)).callback("fit direct")
    for e in [{"phase": "compile"}, *draws(1), ev, {"phase": "compile"}, *draws(0), {"phase": "post"}]:
        cb(e)
    lines = buf.getvalue().splitlines()
    first_total = lines.index("  fit direct: 400/400 iterations, 1 divergences, 0:40 elapsed")
    retry = next(i for i, x in enumerate(lines) if "sampling again at 0.99" in x)
    assert first_total < retry  # the first attempt's totals, then why it samples again
    assert sum("ETA" in x for x in lines[retry:]) == 3  # the second attempt's quarters are shown too
    assert "  fit direct: 400/400 iterations, 0 divergences, 0:40 elapsed" in lines[retry:]
    buf = io.StringIO()
    view = FitProgress(Console(file=buf, force_terminal=True, width=200))
    cb = view.callback("fit direct")
    for e in ({"phase": "compile"}, ev, {"phase": "compile"}, {"phase": "done"}):
        cb(e)
    view.close()
    assert "sampling again at 0.99" in buf.getvalue()


def test_notes_name_draws_discarded_and_drawn_again_with_a_smaller_step():
    from nadfit.reports.conventions import redraw_note

    redrawn = {"target_accept": 0.9, "divergences": 0, "sampling_s": 1.0, "draws": 500,
               "redraw_step_factor": 0.5, "divergences_discarded": 2}
    assert "2 divergent transitions after the warm-up" in retry_note([redrawn])
    assert "step size x 0.5" in redraw_note(redrawn)
    plain = {k: v for k, v in redrawn.items() if k not in ("redraw_step_factor", "divergences_discarded")}
    assert retry_note([plain]) is None and redraw_note(plain) is None
    both = retry_note([{**redrawn, "divergences": 1}, {**plain, "target_accept": 0.99}])
    assert both.startswith("sampled again at target_accept 0.99") and "step size x 0.5" in both


@pytest.mark.parametrize("value", [0.0, 1.0, 1.5, "half"])
def test_redraw_step_factor_is_checked(value):
    with pytest.raises(UserError, match="redraw_step_factor must be between 0 and 1"):
        FitConfig(redraw_step_factor=value).validate()
    assert FitConfig(redraw_step_factor=False).validate().redraw_step_factor is None


def test_progress_says_why_draws_are_drawn_again():
    from nadfit.fitting.cli.progress import FitProgress

    ev = {"phase": "redraw", "chains": 4, "divergences": 2, "factor": 0.5, "draws": 500}
    buf = io.StringIO()
    cb = FitProgress(Console(file=buf, force_terminal=False, width=200)).callback("fit direct")
    for e in ({"phase": "compile"}, ev, {"phase": "done"}):
        cb(e)
    assert ("fit direct: 2 divergent transitions after the warm-up; those draws are discarded and 500 drawn "
            "again per chain with the step size x 0.5") in buf.getvalue()
