"""``python -m tools.docs``: write the generated pages; ``--check``: exit 1 when one is stale."""

from __future__ import annotations

import argparse
import sys

from tools.docs.generate import stale, write


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m tools.docs", description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only compare the committed pages with fresh ones")
    args = p.parse_args()
    if args.check:
        bad = stale()
        for path in bad:
            print(f"stale: {path} (run: python -m tools.docs)", file=sys.stderr)
        return 1 if bad else 0
    for path in write():
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
