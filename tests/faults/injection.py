"""The faults themselves, and the machinery that lets a scenario inject them at a chosen moment.

- `duplicate_publishes`: every task message is published two or three times (a producer that retries after a
  lost confirm, a broker that redelivers).
- `Workers`: real Celery worker processes (the project's app, prefork) on the test database, started, stopped,
  killed with SIGKILL and restarted.
- `BrokerProxy`: a TCP proxy in front of the broker; stopping it is the broker going away for every client at
  once (connections cut, new ones refused), starting it is the broker coming back.
- `LockTrap`: catches a worker in the middle of a transaction. The trap holds a row lock that the worker's
  statement needs; once PostgreSQL shows the worker's backend waiting for it, the worker is mid-batch (it has
  claimed its batch and written part of it), and the scenario kills the worker or terminates that backend.
"""

import contextlib
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from celery.app.task import Task
from django.db import connection

from config.celery import app

REPO = Path(__file__).resolve().parents[2]
BROKER_DB = int(os.environ.get("FAULTS_BROKER_DB", "6"))  # a Redis database of the suite's own, flushed per test


def duplicate_publishes(*, seed: int) -> None:
    """From now on every `apply_async` (and so `delay`) in this process publishes its message 2 or 3 times."""
    rng = random.Random(seed)
    original = Task.apply_async
    if getattr(original, "_faults_duplicates", False):
        return

    def apply_async(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        for _ in range(rng.randint(1, 2)):
            original(self, *args, **kwargs)
        return result

    apply_async._faults_duplicates = True
    apply_async._faults_original = original
    Task.apply_async = apply_async


def duplicate_publishes_undo() -> None:
    original = getattr(Task.apply_async, "_faults_original", None)
    if original is not None:
        Task.apply_async = original


# --- The broker ------------------------------------------------------------------------------------------------


def suite_broker_url() -> str:
    """The suite's broker: the configured Redis broker's server, database BROKER_DB."""
    parts = urlsplit(os.environ["CELERY_BROKER_URL"])
    if parts.scheme not in ("redis", "rediss"):
        raise RuntimeError("the fault suite needs a Redis broker (CELERY_BROKER_URL=redis://host:port/db)")
    return urlunsplit(parts._replace(path=f"/{BROKER_DB}"))


def broker_redis():
    import redis

    return redis.Redis.from_url(suite_broker_url())


def broker_backlog() -> int:
    """Messages waiting in the default queue or delivered and not yet acknowledged."""
    client = broker_redis()
    return client.llen(app.conf.task_default_queue) + client.hlen("unacked")


def use_broker(url: str) -> None:
    """Point this process's Celery app at `url`: later publishes open connections there.

    Celery reads the broker from the CELERY_BROKER_URL environment variable before its configuration."""
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = url
    app.conf.broker_write_url = None
    app.conf.broker_read_url = None
    app._pool = None  # kombu keeps a pool per broker: the old one stays usable for whoever switches back
    with contextlib.suppress(AttributeError, KeyError):
        app.__dict__["amqp"]._producer_pool = None


class BrokerProxy:
    """A loopback TCP proxy to `upstream` (host, port). `stop()` cuts every connection and refuses new ones."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self.port = _free_port()
        self._listener: socket.socket | None = None
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def url_for(self, url: str) -> str:
        parts = urlsplit(url)
        return urlunsplit(parts._replace(netloc=f"127.0.0.1:{self.port}"))

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._pairs.append((client, server))
            thread = threading.Thread(target=self._pump, args=(client, server), daemon=True)
            thread.start()

    @staticmethod
    def _pump(client: socket.socket, server: socket.socket) -> None:
        peers = {client: server, server: client}
        try:
            while True:
                readable, _w, _x = select.select(list(peers), [], [], 1.0)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- Workers ---------------------------------------------------------------------------------------------------

# Settings the workers and the test process share in the suite: no hold (a completed order's commission is
# releasable at once), small split batches (so a killed batch leaves others behind it), a quick sweep.
SUITE_SETTINGS = {
    "COMMISSION_HOLD_DAYS": "0",
    "COMMISSION_SPLIT_BATCH": "4",
    "COMMISSION_SWEEP_AFTER_SECONDS": "1",
    "REFERRALS_TREE_INDEX_INLINE": "1",
    "PAYOUT_PROVIDER": "sandbox",
}


def database_url(application_name: str) -> str:
    """The test database (the one pytest-django created) as a DATABASE_URL, tagged with `application_name`."""
    conf = connection.settings_dict
    user = conf.get("USER") or ""
    host = conf.get("HOST") or "127.0.0.1"
    port = conf.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{conf['NAME']}?application_name={application_name}"


class Worker:
    def __init__(self, name: str, log_dir: Path, env: dict[str, str]):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.ready_file = log_dir / f"{name}.ready"
        self.env = env
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 60) -> None:
        self.ready_file.unlink(missing_ok=True)
        log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - the child process writes it
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.worker_main", self.name, str(self.ready_file)],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a SIGKILL takes the pool's children too
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited at start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {self.name} not ready in {timeout} s:\n{self.log_tail()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes, as the kernel's OOM killer or a lost machine would."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def kill_pool_process(self) -> bool:
        """SIGKILL only the pool process running the task: the worker sees it lost and requeues the message
        (`reject_on_worker_lost`), then forks a new one."""
        children = [pid for pid in _pids() if _parent(pid) == self.process.pid] if self.process else []
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return bool(children)

    def stop(self, timeout: float = 20) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state, past the command name


class Workers:
    """`count` worker processes on the test database and the suite's broker (or `broker_url`)."""

    def __init__(self, log_dir: Path, *, count: int = 2, broker_url: str | None = None, extra_env=None):
        env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
        env.update(SUITE_SETTINGS)
        env.update(
            CELERY_BROKER_URL=broker_url or suite_broker_url(),
            DJANGO_SETTINGS_MODULE="config.settings",
            PYTHONPATH=str(REPO),
        )
        env.update(extra_env or {})
        self.all = []
        for index in range(count):
            worker_env = dict(env, DATABASE_URL=database_url(f"faults-w{index}"))
            self.all.append(Worker(f"faults-w{index}", log_dir, worker_env))

    def start(self) -> None:
        for worker in self.all:
            worker.start()

    def stop(self) -> None:
        for worker in self.all:
            worker.stop()

    def by_application_name(self, name: str) -> Worker:
        return next(worker for worker in self.all if worker.name == name)

    def logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.log_tail()}" for w in self.all)


# --- Catching a worker mid-transaction -------------------------------------------------------------------------


def _dsn() -> str:
    conf = connection.settings_dict
    return psycopg.conninfo.make_conninfo(
        dbname=conf["NAME"],
        user=conf.get("USER") or None,
        host=conf.get("HOST") or "127.0.0.1",
        port=conf.get("PORT") or 5432,
        application_name="faults-trap",
    )


def admin_connection() -> psycopg.Connection:
    return psycopg.connect(_dsn(), autocommit=True)


@contextlib.contextmanager
def lock_trap(sql: str, params: tuple) -> Iterator["Trap"]:
    """Hold the row locks `sql` (a SELECT … FOR UPDATE) takes until the block ends."""
    trap_conn = psycopg.connect(_dsn())
    try:
        with trap_conn.cursor() as cursor:
            cursor.execute(sql, params)
            locked = cursor.fetchall() if cursor.description else []
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        yield Trap(pid=pid, locked=len(locked))
    finally:
        trap_conn.rollback()
        trap_conn.close()


class Trap:
    def __init__(self, pid: int, locked: int):
        self.pid = pid
        self.locked = locked

    def wait_for_victim(self, timeout: float = 20) -> tuple[int, str] | None:
        """The backend (pid, application name) that is waiting for the trap's locks, once there is one."""
        deadline = time.monotonic() + timeout
        with admin_connection() as admin:
            while time.monotonic() < deadline:
                row = admin.execute(
                    "SELECT pid, application_name FROM pg_stat_activity "
                    "WHERE %s = ANY(pg_blocking_pids(pid)) ORDER BY backend_start LIMIT 1",
                    (self.pid,),
                ).fetchone()
                if row:
                    return row[0], row[1]
                time.sleep(0.02)
        return None


def terminate_backend(pid: int) -> bool:
    with admin_connection() as admin:
        return bool(admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0])


def terminate_other_backends() -> None:
    """End every other session on the test database (left by killed workers), so the next test can flush it."""
    with admin_connection() as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name LIKE 'faults-%%'"
        )
