"""Benchmarks (`make bench`). They print figures and ratios and write docs/benchmarks.md; they never fail a test."""
