"""nadfit fitting layer: inference, comparison, calibration, sweeps, benchmark and the CLI (top layer)."""
