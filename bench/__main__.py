"""`python -m bench [SCENARIO ...] [--quick] [size flags]`: run the benchmarks, print the table.

Scenarios: ingest, e2e, ratelimit, followups, scaling, reconcile, console, footprint (the default
set); the opt-in failover (a Sentinel failover at REDIS_MIN_REPLICAS_ACK 0 and 1, and what 1
costs the ingest rate); and the opt-in diagnostics in bench/diagnostics/: profile (py-spy on the
receiver and a worker) and gc (the receiver's GC pauses).
Progress goes to stderr, the table to stdout, and every figure with the machine,
the Python version and the git commit to bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from types import ModuleType

from bench import (
    console,
    e2e,
    failover,
    followups,
    footprint,
    ingest,
    ratelimit,
    reconcile,
    report,
    scaling,
)
from bench.common import Outcome, say
from bench.diagnostics import gcpause, profile

SCENARIOS: dict[str, ModuleType] = {
    m.NAME: m
    for m in (
        ingest,
        e2e,
        ratelimit,
        followups,
        scaling,
        reconcile,
        console,
        footprint,
        failover,
        profile,
        gcpause,
    )
}
DEFAULT = (
    "ingest",
    "e2e",
    "ratelimit",
    "followups",
    "scaling",
    "reconcile",
    "console",
    "footprint",
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "scenarios",
        nargs="*",
        metavar="SCENARIO",
        help=f"any of {', '.join(SCENARIOS)} (default: {' '.join(DEFAULT)})",
    )
    p.add_argument("--quick", action="store_true", help="small sizes: a sanity check in ~2 min")
    for module in SCENARIOS.values():
        module.add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    opts = parser().parse_args(argv)
    names = opts.scenarios or list(DEFAULT)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser().error(f"unknown scenario(s): {', '.join(unknown)}")
    started = time.time()
    outcomes: list[Outcome] = []
    failed: list[str] = []
    try:
        for name in names:
            say(f"== {name}")
            t0 = time.monotonic()
            try:
                outcome = SCENARIOS[name].run(opts)
            except (RuntimeError, TimeoutError, OSError) as exc:
                say(f"{name} failed: {type(exc).__name__}: {exc}")
                failed.append(name)
                outcome = Outcome(name, data={"error": f"{type(exc).__name__}: {exc}"})
                outcome.row("failed", str(exc).splitlines()[0][:80])
            outcome.data["duration_s"] = round(time.monotonic() - t0, 1)
            say(f"== {name} done in {outcome.data['duration_s']} s")
            outcomes.append(outcome)
    except KeyboardInterrupt:
        say("interrupted: every process started was stopped")
        return 130
    finally:
        if outcomes:
            path = report.write(outcomes, quick=opts.quick, started=started, argv=argv)
            say(f"results: {path}")
    print(report.table([row for o in outcomes for row in o.rows]))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
