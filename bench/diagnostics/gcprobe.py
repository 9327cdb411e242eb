"""`python -m bench.diagnostics.gcprobe web|worker|beat`: the service's command, GC pauses timed.

The process runs `worker.cli.main` exactly as `python -m worker` does; a `gc.callbacks` hook times
every collection per generation and a thread writes the totals to $GC_OUT twice a second (uvicorn
re-raises SIGTERM after its shutdown, so an exit hook would never run). $GC_TUNE tries the fix
suggested in docs/benchmarks.md without touching the service: `freeze` (gc.freeze() after start-up),
`thresh` (gc.set_threshold(50_000, 50, 1000)) or `both`.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
from typing import Any

THRESHOLDS = (50_000, 50, 1000)
FREEZE_AFTER_SECONDS = 3.0  # the app is built by then (its imports happen inside main)

pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
_started = [0.0]


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _started[0] = time.perf_counter()
    else:
        pauses[int(info["generation"])].append(time.perf_counter() - _started[0])


def _dump(path: str) -> None:
    while True:
        time.sleep(0.5)
        report = {
            str(g): {
                "count": len(v),
                "total_ms": round(sum(v) * 1000, 1),
                "max_ms": round(max(v, default=0.0) * 1000, 2),
            }
            for g, v in pauses.items()
        }
        with open(path + ".tmp", "w") as out:
            json.dump(report, out)
        os.replace(path + ".tmp", path)


def main() -> None:
    gc.callbacks.append(_on_gc)
    tune = os.environ.get("GC_TUNE", "none")
    if tune in ("thresh", "both"):
        gc.set_threshold(*THRESHOLDS)
    if tune in ("freeze", "both"):
        gc.freeze()
        threading.Timer(FREEZE_AFTER_SECONDS, gc.freeze).start()
    threading.Thread(target=_dump, args=(os.environ["GC_OUT"],), daemon=True).start()
    sys.argv = ["leadrouter", *sys.argv[1:]]
    from worker.cli.main import main as leadrouter

    leadrouter()


if __name__ == "__main__":
    main()
