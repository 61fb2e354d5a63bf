"""Benchmarks that print figures next to the issues' targets (not tests).

Each module `bench/<name>.py` has a `main()`. `python -m bench` runs them all; `python -m bench
<name> [args...]` runs the one named, with the remaining arguments left in sys.argv for it."""
