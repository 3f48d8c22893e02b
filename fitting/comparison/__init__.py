"""Hypothesis comparison: PSIS-LOO, stacking, leave-one-study-out, marginal likelihoods, sensitivity."""
