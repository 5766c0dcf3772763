#!/usr/bin/env python3
"""wishlist-migrator benchmarks (issue 5). Run through `make bench` (or `make bench QUICK=1`),
which builds the release binaries, starts a throwaway PostgreSQL cluster and calls this.

Every comparison runs its peers alternately in the same loop (rotating the order each round)
so a noisy, shared machine slows all of them alike; ratios are the median of per-round ratios.
Nothing here asserts on time: a broken benchmark (a tool failing, a wrong result) makes the
run exit 1, a budget miss is only reported.

This file is only the driver: each part is a module whose `run(ctx)` measures and returns its
section of BENCHMARKS.md (bench/parts/), what they share is bench/common.py, and the report is
bench/report.py. No module imports this one (scripts/check-bench-imports.py).

Standard library only, except matplotlib for the plot.
"""

import argparse
import datetime
import importlib
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import reading  # noqa: E402
import report  # noqa: E402
from common import BenchError, Ctx, log, md_table  # noqa: E402

# The parts in the order they run and appear in BENCHMARKS.md: (number, module). A module is
# imported only when its part runs, so one that cannot even load is reported broken like any
# other failure, and `--only` skips it. Adding a part is adding its line here.
PARTS = [
    ("1", "parts.part1_noop"),
    ("2", "parts.part2_history"),
    ("3", "parts.part3_lambda"),
    ("4", "parts.part4_scale"),
    ("5", "parts.part5_online"),
    ("6", "parts.part6_drift"),
    ("7", "parts.part7_link"),
    ("8", "parts.part8_lint"),
    ("9", "parts.part9_memory"),
]


def run_part(ctx, num, module):
    t0 = time.perf_counter()
    log(f"=== part {num}")
    try:
        return importlib.import_module(module).run(ctx)
    except Exception as e:  # noqa: BLE001 - every failure is reported, the other parts still run
        msg = ctx.redact(f"part {num}: {type(e).__name__}: {e}")
        log("BROKEN " + msg)
        if not isinstance(e, BenchError):
            traceback.print_exc()
        ctx.failures.append(msg.splitlines()[0])
        return f"## Part {num}\n\n**Broken in this run**: `{msg.splitlines()[0]}`"
    finally:
        log(f"part {num} took {time.perf_counter() - t0:.0f} s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pg-dir", required=True)
    ap.add_argument("--pg-bin", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--sqlx", default="")
    ap.add_argument("--lambda-bin", default="")
    ap.add_argument("--lambda300-bin", default="", help="the Lambda built with part 2's 300-migration history embedded")
    ap.add_argument("--lambda-artifact", default="", help="the arm64 bootstrap cargo-lambda builds for deployment")
    ap.add_argument("--lambda-broken", default="", help="why a Lambda build failed (part 3 is then reported broken)")
    ap.add_argument("--work", required=True)
    ap.add_argument("--out-md", required=True)
    ap.add_argument("--out-png", required=True)
    ap.add_argument("--only", default="", help="comma-separated parts to run, e.g. 1,2 (for development)")
    args = ap.parse_args()
    common.QUICK = args.quick
    ctx = Ctx(args)
    started = datetime.datetime.now(datetime.timezone.utc)
    info = report.machine(ctx)
    vers = report.versions(ctx)
    only = set(args.only.split(",")) if args.only else None
    for num, module in PARTS:
        if only and num not in only:
            continue
        ctx.sections[f"part{num}"] = run_part(ctx, num, module)
    ctx.sections.update(reading.sections(ctx))
    plot_ok = False
    try:
        plot_ok = report.plot(ctx, args.out_png)
    except Exception as e:  # noqa: BLE001
        ctx.failures.append(f"plot: {e}")
    finished = datetime.datetime.now(datetime.timezone.utc)
    text = report.render(ctx, started, finished, info, vers, plot_ok, [f"part{num}" for num, _ in PARTS])
    with open(args.out_md, "w") as f:
        f.write(text)
    print()
    print(md_table(["benchmark", "measured", "budget", "verdict"], ctx.headline))
    if ctx.failures:
        print("\nBROKEN: " + "\n        ".join(ctx.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
