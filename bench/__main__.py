"""Run every benchmark module in bench/ (each has a `main()`), or the one named: `python -m bench
identity`. Extra arguments after the name are left in sys.argv for that bench."""

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    names = sorted(
        m.name
        for m in pkgutil.iter_modules([str(Path(__file__).parent)])
        if not m.name.startswith("_")
    )
    wanted = sys.argv[1:2] or names
    sys.argv = sys.argv[:1] + sys.argv[2:]
    for name in wanted:
        if name not in names:
            sys.exit(f"unknown bench {name!r}; known: {', '.join(names)}")
        print(f"== bench {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
