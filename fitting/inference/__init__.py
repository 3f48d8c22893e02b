"""Inference: fit configuration, PyMC model assembly, sampling, diagnostics gates, prediction, simulation."""
