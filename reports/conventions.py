"""Conventions shared by every summary nadfit writes (summary.json, comparison.json, reports).

They live in the lowest layer that shows them (reports); the fitting layer imports them from here.
"""

#: credible intervals: equal-tailed (ETI), 89 % (McElreath's convention: not a significance level)
CI_PROB = 0.89
CI_QUANTILES = ((1 - CI_PROB) / 2, 1 - (1 - CI_PROB) / 2)  # 0.055, 0.945
#: Pareto k above which a PSIS importance-sampling estimate is unreliable (Vehtari et al. 2024)
PARETO_K_BAD = 0.7
