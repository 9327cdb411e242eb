"""`python -m leadterra_sandbox`: run the sandbox until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import resource
import signal
from collections.abc import Callable, Sequence

import structlog

from leadterra_sandbox.logs import configure_logging
from leadterra_sandbox.server import Options, Sandbox

log = structlog.get_logger("leadterra_sandbox")


def parse_args(argv: Sequence[str] | None = None) -> tuple[Options, str]:
    p = argparse.ArgumentParser(prog="python -m leadterra_sandbox", description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8090, help="the /v1 API port (0: any free port)")
    p.add_argument(
        "--control-port",
        type=int,
        default=None,
        help="the /_control port (default: port + 1, or a free port if port is 0)",
    )
    p.add_argument("--sdrs", type=int, default=6, help="how many SDRs to seed (sdr_1..sdr_N)")
    p.add_argument(
        "--disconnected", type=int, default=0, help="the last N SDRs have gmailConnected false"
    )
    p.add_argument("--workspace-key", default="sk_test_workspace")
    p.add_argument("--latency-ms", type=float, default=0.0, help="added to every /v1 answer")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="plus uniform 0..jitter")
    p.add_argument(
        "--followup-delay",
        type=float,
        default=172800.0,
        help="seconds from assign (or schedule without dueAt) to the follow-up due",
    )
    p.add_argument(
        "--allow-http-webhooks",
        action="store_true",
        help="let POST /v1/webhooks register http:// URLs",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for faults, jitter and mixes")
    p.add_argument("--max-calls", type=int, default=500_000, help="calls kept in the call log")
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    if not 0 <= args.disconnected <= args.sdrs:
        p.error("--disconnected must be between 0 and --sdrs")
    options = Options(
        host=args.host,
        port=args.port,
        control_port=args.control_port,
        sdrs=args.sdrs,
        disconnected=args.disconnected,
        workspace_key=args.workspace_key,
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        followup_delay=args.followup_delay,
        allow_http_webhooks=args.allow_http_webhooks,
        seed=args.seed,
        max_calls=args.max_calls,
    )
    return options, args.log_level.upper()


def raise_file_limit() -> None:
    """Lift the open-file soft limit to the hard one: 500+ connections need descriptors."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def serve(options: Options) -> None:
    sandbox = Sandbox(options)
    await sandbox.start()
    print(f"Leadterra sandbox on {sandbox.api_url} (control {sandbox.control_url})", flush=True)
    log.info(
        "sandbox.started",
        api=sandbox.api_url,
        control=sandbox.control_url,
        sdrs=options.sdrs,
        disconnected=options.disconnected,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sandbox.stop()
        log.info("sandbox.stopped")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when installed, else None (asyncio's); bench/loadcheck.py uses it."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> None:
    options, level = parse_args(argv)
    configure_logging(level, secret=options.workspace_key)
    raise_file_limit()
    # The world only grows during a run: rarer collections keep p99 latency flat under load.
    gc.freeze()
    gc.set_threshold(50_000, 20, 1000)
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(serve(options))


if __name__ == "__main__":
    main()
