"""Reproducible speed and memory measurements (run them with the scripts in ``benchmarks/``)."""
