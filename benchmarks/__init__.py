"""Benchmarks: scripts that print figures (`python -m benchmarks.<name>`); they assert nothing about time."""
