"""Benchmarks of the HiNAS library (run from the repository root: ``python -m benchmarks.<name>``)."""
