"""nadfit model layer: salvage-loop equations, hypotheses, priors and the observation model."""
