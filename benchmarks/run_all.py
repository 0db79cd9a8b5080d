"""Run every benchmark in this folder (``bench_*.py``), one process each.

    python benchmarks/run_all.py                      # full size
    python benchmarks/run_all.py --json-dir results   # also write results/<name>.json
    python benchmarks/run_all.py -- --n 20000         # pass arguments to every benchmark

Each benchmark runs in its own Python process so that JIT caches, thread pools and
memory of one do not disturb the next. Timings are never asserted: the exit status
is non-zero only when a benchmark crashes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json-dir", type=Path, help="write <DIR>/<benchmark>.json")
    parser.add_argument("-k", "--select", default="", help="run only names containing this")
    parser.add_argument("extra", nargs="*", help="arguments after -- go to every benchmark")
    args = parser.parse_args(argv)
    scripts = sorted(p for p in HERE.glob("bench_*.py") if args.select in p.stem)
    if not scripts:
        print("no benchmark matched", file=sys.stderr)
        return 2
    if args.json_dir:
        args.json_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for script in scripts:
        cmd = [sys.executable, str(script), *args.extra]
        if args.json_dir:
            cmd += ["--json", str(args.json_dir / f"{script.stem}.json")]
        print(f"=== {script.name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call(cmd)
        print(f"=== {script.name}: exit {rc} after {time.perf_counter() - t0:.0f} s\n", flush=True)
        if rc:
            failed.append(script.name)
    if failed:
        print(f"crashed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
