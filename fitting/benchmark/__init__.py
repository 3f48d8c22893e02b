"""Benchmark: the production path against generic ODE samplers, the posteriordb reference check, profiles."""
