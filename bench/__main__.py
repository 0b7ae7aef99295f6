"""python -m bench [loop|floor|sustained|rewards|analytics|clicks10m] [--click-requests N] [--seconds S] [--rounds R]
[--servers procfile,dockerfile] [--scales 1,10] [--clicks N]"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "referral_saas.settings")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


SUITES = ["loop", "floor", "sustained", "rewards", "analytics", "clicks10m"]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suite", nargs="?", default="all", choices=["all", *SUITES])
    parser.add_argument("--click-requests", type=int, default=20000)
    parser.add_argument(
        "--seconds",
        type=int,
        default=None,
        help="loop, floor: seconds per round (15); sustained: seconds of load (120)",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--servers", default="", help="loop: only these configurations (procfile, dockerfile)")
    parser.add_argument("--scales", default="1,10", help="analytics: data set sizes (1 = 1M clicks, 10 = 10M)")
    parser.add_argument("--clicks", type=int, default=10_000_000, help="clicks10m: clicks stored for the second half")
    args = parser.parse_args()
    if args.suite == "all":
        # Each suite in its own process: each builds its own benchmark database and Django setup.
        import subprocess

        for suite in SUITES:
            subprocess.run([sys.executable, "-m", "bench", suite, *sys.argv[2:]], check=True)
        return 0
    if args.suite == "loop":
        from bench import loop

        loop.run(
            click_requests=args.click_requests,
            seconds=args.seconds or 15,
            rounds=args.rounds,
            servers=[s.strip().lower() for s in args.servers.split(",") if s.strip()],
        )
    elif args.suite == "floor":
        from bench import floor

        floor.run(seconds=args.seconds or 15, rounds=min(args.rounds, 3))
    elif args.suite == "sustained":
        from bench import sustained

        sustained.run(seconds=args.seconds or 120)
    elif args.suite == "rewards":
        from bench import rewards

        rewards.run()
    elif args.suite == "analytics":
        from bench import analytics

        analytics.run(scales=[int(s) for s in args.scales.split(",")])
    elif args.suite == "clicks10m":
        from bench import clicks

        clicks.run(clicks=args.clicks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
