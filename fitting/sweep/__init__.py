"""Sweeps: many independent fits on Dask distributed (streamed results, retries, resume)."""
