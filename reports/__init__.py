"""nadfit report layer: HTML reports and figures of loaded runs and comparisons (never imports fitting)."""
