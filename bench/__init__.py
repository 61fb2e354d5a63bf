"""Benchmarks: each module `bench/<name>.py` has a `main()` that prints figures next to targets.

`python -m bench` runs them all; `python -m bench ingest` runs one.
"""
