"""python -m bench [loop] [--click-requests N] [--seconds S] [--rounds R]"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "referral_saas.settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suite", nargs="?", default="all", choices=["all", "loop"])
    parser.add_argument("--click-requests", type=int, default=20000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.suite in ("all", "loop"):
        from bench import loop

        loop.run(click_requests=args.click_requests, seconds=args.seconds, rounds=args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
