"""Benchmarks that print figures next to the issues' targets (not tests).

`python -m bench [name]` runs them all or the one named."""
