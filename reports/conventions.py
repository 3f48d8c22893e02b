"""Conventions shared by every summary nadfit writes (summary.json, comparison.json, reports).

They live in the lowest layer that shows them (reports); the fitting layer imports them from here.
"""

#: credible intervals: equal-tailed (ETI), 89 % (McElreath's convention: not a significance level)
CI_PROB = 0.89
CI_QUANTILES = ((1 - CI_PROB) / 2, 1 - (1 - CI_PROB) / 2)  # 0.055, 0.945
#: Pareto k above which a PSIS importance-sampling estimate is unreliable (Vehtari et al. 2024)
PARETO_K_BAD = 0.7


def retry_note(attempts) -> str | None:
    """One sentence on a fit sampled again after divergent transitions (``summary["attempts"]``
    of a run; ``inference.fit.sample_with_retry``), or None when the first attempt was kept."""
    if not attempts or len(attempts) < 2:
        return None
    first, last = attempts[0], attempts[-1]
    n = first["divergences"]
    return (f"sampled again at target_accept {last['target_accept']} (same seed) after {n} divergent "
            f"transition{'s' if n != 1 else ''} at {first['target_accept']}; the diagnostics and "
            f"results are the second attempt's ({last['divergences']} divergences)")
