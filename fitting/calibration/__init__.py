"""Calibration: simulation-based calibration, parameter recovery, confusion matrix of the comparison."""
