"""Benchmarks of cabot: `python -m bench` prints one table (see docs/benchmarks.md)."""
