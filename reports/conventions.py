"""Conventions shared by every summary nadfit writes (summary.json, comparison.json, reports).

They live in the lowest layer that shows them (reports); the fitting layer imports them from here.
"""

#: credible intervals: equal-tailed (ETI), 89 % (McElreath's convention: not a significance level)
CI_PROB = 0.89
CI_QUANTILES = ((1 - CI_PROB) / 2, 1 - (1 - CI_PROB) / 2)  # 0.055, 0.945
#: Pareto k above which a PSIS importance-sampling estimate is unreliable (Vehtari et al. 2024)
PARETO_K_BAD = 0.7


def redraw_note(attempt: dict) -> str | None:
    """One sentence on draws discarded for divergent transitions and drawn again with a smaller
    step size after the same warm-up (an attempt of ``summary["attempts"]``), or None."""
    n = attempt.get("divergences_discarded")
    if not attempt.get("redraw_step_factor") or not n:
        return None
    return (f"{n} divergent transition{'s' if n != 1 else ''} after the warm-up at target_accept "
            f"{attempt['target_accept']}: those draws were discarded and drawn again from where the chains "
            f"stopped, with the step size x {attempt['redraw_step_factor']} (same warm-up)")


def retry_note(attempts) -> str | None:
    """One sentence on a fit sampled again after divergent transitions (``summary["attempts"]``
    of a run; ``inference.fit.sample_with_retry``), with the draws discarded and drawn again with
    a smaller step size (:func:`redraw_note`); None when the first draws were kept."""
    notes = [x for x in (redraw_note(a) for a in attempts or []) if x]
    if not attempts or len(attempts) < 2:
        return "; ".join(notes) or None
    first, last = attempts[0], attempts[-1]
    n = first["divergences"]
    return (f"sampled again at target_accept {last['target_accept']} (same seed) after {n} divergent "
            f"transition{'s' if n != 1 else ''} at {first['target_accept']}; the diagnostics and "
            f"results are the second attempt's ({last['divergences']} divergences)"
            + "".join(f"; {x}" for x in notes))
