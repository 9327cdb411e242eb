#!/usr/bin/env python3
"""Run the fault scenarios against real processes and print the table for the README.

    .venv/bin/python scripts/reliability.py            # every scenario (about 6 minutes)
    .venv/bin/python scripts/reliability.py poison     # one or more by name

Each scenario starts its own Redis, sandbox and Procfile processes (tests/reliability/), at the
defaults users run but for the settings the row is about, and says which in its `settings`
column; the suite (tests/e2e/test_reliability.py) runs the same rows shortened. Exit status 1
when any row has a lost or duplicated reply.
"""

from __future__ import annotations

import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.scenarios import COLUMNS, SCENARIOS, Row, run


def markdown(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row.as_table_row()) + " |" for row in rows]
    return "\n".join(lines)


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(
            f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}",
            file=sys.stderr,
        )
        return 2
    rows, failed = [], []
    for name in names or list(SCENARIOS):
        started = time.monotonic()
        print(f"running {name}...", file=sys.stderr, flush=True)
        try:
            with tempfile.TemporaryDirectory(prefix=f"reliability-{name}-") as folder:
                row = run(name, Path(folder), defaults=True)
        except Exception:  # one broken row must not cost the others' table
            traceback.print_exc()
            failed.append(name)
            continue
        print(f"  done in {time.monotonic() - started:.0f} s: {row.checks}", file=sys.stderr)
        rows.append(row)
    print(markdown(rows))
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 0 if not failed and all(r.lost == 0 and r.duplicates == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
