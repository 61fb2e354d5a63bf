"""Run every benchmark module in bench/ (each has a `main()`), or the one named: `python -m bench
ingest`. Extra arguments after the name are left in sys.argv for that bench."""

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    folder = Path(__file__).resolve().parent
    return sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if not m.name.startswith("_"))


def main() -> int:
    names = available()
    wanted = sys.argv[1:2] or names
    sys.argv = sys.argv[:1] + sys.argv[2:]
    failed = 0
    for name in wanted:
        if name not in names:
            print(f"unknown bench {name!r}; known: {', '.join(names)}", file=sys.stderr)
            return 2
        print(f"== bench {name}", flush=True)
        # A bench returns nothing or 0 when it ran; a non-zero result marks a failed run.
        failed += bool(importlib.import_module(f"bench.{name}").main())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
