"""Benchmark the share-link redirect /l/<code> under gunicorn against a bare Django 302, in the same run.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/redirect.py [--gunicorn sync:4 gthread:2x8] [--connections 64] [--duration 20]

PostgreSQL only, and the database named in DATABASE_URL is never read or written: the
script creates a throwaway database next to it (`test_bench_redirect_<name>`, migrated from
scratch) and drops it at the end (also on error). Redis is a dedicated database
(`--redis-url`, default redis://127.0.0.1:6379/7): the click keys (`cps:clicks:*`) and the
cached link targets (`cps:links:*`) there are deleted before and after, nothing else.

What it does:

1. creates one member, their shop and one share link (to the shop's home page);
2. times one request of each kind in-process (the WSGI handler called directly, no HTTP), wall
   clock and CPU, counts the database queries and Redis commands each makes, and times the
   pieces the redirect adds to the bare view: where its cost is;
3. for each gunicorn configuration (`--gunicorn`: `sync:4` is 4 sync workers, `gthread:2x8` is
   2 gthread workers of 8 threads), starts gunicorn on 127.0.0.1 with DEBUG=0 (bench.settings:
   the project's settings and URLs plus /bench/bare-redirect/), checks both answers (302, target,
   only the attribution cookie), warms both endpoints up with wrk, flushes the clicks counted so
   far, then runs `--rounds` pairs of wrk runs: /bench/bare-redirect/, then /l/<code>, with a
   browser User-Agent (bots are not counted). During each run it reads from /proc the CPU time of
   the gunicorn workers, redis-server, wrk and the whole machine: what a request costs each, and
   whether something else on the machine took CPU (such a round is marked disturbed and left out
   of the verdicts, unless every round is);
4. stops gunicorn, runs `shops.services.clicks_flush()` and compares the clicks stored in
   ShareLinkDailyStat with the requests wrk sent to /l/ (a small wrk Lua script counts the
   requests written, and the responses that were not a 302; wrk itself counts responses).

The markdown tables go to stdout, progress to stderr.
"""

import argparse
import contextlib
import fcntl
import http.client
import io
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/7"
BARE_PATH = "/bench/bare-redirect/"
BROWSER_UA = "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120 Mobile Safari/537.36"
INVALID_EMAIL_DOMAIN = "bench.invalid"  # RFC 2606: can never be a real address
REDIS_PATTERNS = ("cps:clicks:*", "cps:links:*")
# A round is disturbed when something outside the benchmark (another job on the machine) used more than
# this share of all CPUs during either endpoint's run; the verdicts then use the undisturbed rounds.
DISTURBED_SHARE = 0.10
# One run at a time on a machine: two would share the CPU, the throwaway database and the Redis keys.
LOCK_FILE = Path(tempfile.gettempdir()) / "bench-redirect.lock"
ATTRIBUTION_COOKIE = "cps_ref"

# Counts, per wrk thread, the requests written (request() runs just before each write) and the
# responses that were not a 302; done() adds the threads up. wrk counts only responses received.
# wrk calls request() once more on its first thread, right after init(), to check the request it
# builds (script_verify_request in wrk.c); that call sends nothing, so that thread starts at -1.
WRK_LUA = """
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("first", #threads == 1)
end

function init(args)
  sent = first and -1 or 0
  not302 = 0
end

function request()
  sent = sent + 1
  return wrk.request()
end

function response(status, headers, body)
  if status ~= 302 then
    not302 = not302 + 1
  end
end

function done(summary, latency, requests)
  local total_sent, total_not302 = 0, 0
  for _, thread in ipairs(threads) do
    total_sent = total_sent + thread:get("sent")
    total_not302 = total_not302 + thread:get("not302")
  end
  io.write(string.format("bench-sent %d\\nbench-not302 %d\\n", total_sent, total_not302))
end
"""


@dataclass(frozen=True)
class GunicornConfig:
    worker_class: str
    workers: int
    threads: int

    @property
    def label(self) -> str:
        if self.worker_class == "gthread":
            return f"{self.workers} gthread workers × {self.threads} threads"
        return f"{self.workers} sync workers"


@dataclass
class CpuUse:
    """CPU seconds spent during one wrk run, by whom (from /proc), and the machine's total busy time."""

    workers: float  # the gunicorn worker processes
    redis: float | None  # redis-server (None: its /proc entry is not readable)
    wrk: float
    machine_busy: float  # all CPUs, everything: the difference to the above is the rest of the machine
    capacity: float  # wall time × CPUs

    @property
    def rest(self) -> float:
        return self.machine_busy - self.workers - (self.redis or 0.0) - self.wrk

    @property
    def rest_share(self) -> float:
        return self.rest / self.capacity


@dataclass
class WrkResult:
    requests: int  # responses received ("N requests in ...")
    sent: int  # requests written (Lua)
    rps: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx_3xx: int
    not_302: int
    cpu: CpuUse | None = None

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx_3xx + self.not_302


@dataclass
class ConfigResult:
    config: GunicornConfig
    rounds: list[tuple[WrkResult, WrkResult]]  # (bare, real), measured one after the other
    clicks_stored: int
    profiles: dict[str, dict[str, tuple[float, float]]] | None = None  # endpoint -> read_py_spy()
    profile_real: WrkResult | None = None  # the /l/ run under py-spy: its clicks are stored too
    paced: tuple[WrkResult, WrkResult] | None = None  # (bare, real) at --paced-rate: its /l/ clicks count too

    def _extra(self) -> list[WrkResult]:
        return [run for run in (self.profile_real, self.paced and self.paced[1]) if run is not None]

    @property
    def sent(self) -> int:
        return sum(real.sent for _bare, real in self.rounds) + sum(run.sent for run in self._extra())

    @property
    def received(self) -> int:
        return sum(real.requests for _bare, real in self.rounds) + sum(run.requests for run in self._extra())

    def disturbed(self, n: int) -> bool:
        return any(wrk.cpu.rest_share > DISTURBED_SHARE for wrk in self.rounds[n])

    @property
    def quiet_rounds(self) -> list[tuple[WrkResult, WrkResult]]:
        """The undisturbed rounds, or all of them if every round was disturbed."""
        quiet = [pair for n, pair in enumerate(self.rounds) if not self.disturbed(n)]
        return quiet or self.rounds


def parse_config(spec: str) -> GunicornConfig:
    match = re.fullmatch(r"sync:(\d+)|gthread:(\d+)x(\d+)", spec)
    if not match:
        raise argparse.ArgumentTypeError(f"{spec!r}: use sync:<workers> or gthread:<workers>x<threads>")
    if match.group(1):
        return GunicornConfig("sync", int(match.group(1)), 1)
    return GunicornConfig("gthread", int(match.group(2)), int(match.group(3)))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--gunicorn",
        type=parse_config,
        nargs="+",
        default=[parse_config("sync:4")],
        metavar="SPEC",
        help="gunicorn configurations to measure, each on both endpoints: sync:<workers> or "
        "gthread:<workers>x<threads> (default sync:4)",
    )
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (default 64)")
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--duration", type=int, default=20, help="seconds of wrk per endpoint (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="bare-then-/l/ pairs per configuration (default 3)")
    parser.add_argument(
        "--paced-rate",
        type=int,
        default=1000,
        help="after the saturated rounds, one run per endpoint with the same connections each pausing so that "
        "together they offer about this many req/s: latency below saturation (default 1000; 0 skips it)",
    )
    parser.add_argument("--warmup", type=int, default=5, help="seconds of wrk warm-up per endpoint (default 5)")
    parser.add_argument("--inprocess", type=int, default=2000, help="in-process requests timed per kind (2000)")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help=f"a dedicated Redis db ({DEFAULT_REDIS_URL})")
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        help="py-spy executable: after the measured rounds, sample every worker during a further wrk run on each "
        "endpoint and print where the workers spend their time (not part of the measured figures)",
    )
    parser.add_argument("--profile-seconds", type=int, default=15, help="seconds of each py-spy run (default 15)")
    args = parser.parse_args(argv)
    if min(args.connections, args.wrk_threads, args.duration, args.rounds, args.warmup, args.inprocess) < 1:
        parser.error("--connections, --wrk-threads, --duration, --rounds, --warmup, --inprocess must be at least 1")
    return args


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def configure_environment(redis_url: str) -> None:
    """What both this process and gunicorn run with: production settings over plain HTTP on loopback."""
    sys.path.insert(0, str(REPO_ROOT))  # run as a script: the repository root, where `bench` imports from
    from bench import production_secrets

    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DEBUG": "0",
            **production_secrets(),  # and the sandbox providers allowed, as on staging
            "SECURE_SSL_REDIRECT": "0",
            "ALLOWED_HOSTS": "127.0.0.1",
            "REDIS_URL": redis_url,
            "CLICKS_REDIS_URL": redis_url,
            "LOG_LEVEL": "WARNING",
        }
    )


def setup_django() -> None:
    # Run as a script, sys.path[0] is bench/; the repository root is what the project imports from.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if p != here]
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()


def redis_clear(client) -> int:
    keys = [key for pattern in REDIS_PATTERNS for key in client.scan_iter(match=pattern, count=1000)]
    if keys:
        client.delete(*keys)
    return len(keys)


def url_with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_duration_ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise ValueError(f"cannot read wrk duration {text!r}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}[match.group(2)]
    return float(match.group(1)) * scale


def parse_wrk(output: str) -> WrkResult:
    def find(pattern: str, default: str | None = None) -> re.Match | None:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None and default is None:
            raise ValueError(f"wrk output has no {pattern!r}:\n{output}")
        return match

    socket_errors = 0
    if match := find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", default=""):
        socket_errors = sum(int(n) for n in match.groups())
    non_2xx_3xx = int(m.group(1)) if (m := find(r"Non-2xx or 3xx responses: (\d+)", default="")) else 0
    return WrkResult(
        requests=int(find(r"^\s*(\d+) requests in ").group(1)),
        sent=int(find(r"^bench-sent (\d+)$").group(1)),
        rps=float(find(r"^Requests/sec:\s+([\d.]+)").group(1)),
        p50_ms=parse_duration_ms(find(r"^\s+50%\s+(\S+)").group(1)),
        p99_ms=parse_duration_ms(find(r"^\s+99%\s+(\S+)").group(1)),
        socket_errors=socket_errors,
        non_2xx_3xx=non_2xx_3xx,
        not_302=int(find(r"^bench-not302 (\d+)$").group(1)),
    )


def process_cpu(pid: int) -> float | None:
    """utime + stime of a process (all its threads), in seconds; None if it is gone or not readable."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # fields from the 3rd (state) on: utime is the 14th, stime the 15th
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(parent: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                pids.append(int(stat.parent.name))
    return pids


def machine_busy() -> float:
    """Seconds of CPU busy (not idle, not iowait) summed over all CPUs since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(workers: list[int], redis_pid: int | None) -> tuple:
    redis_cpu = process_cpu(redis_pid) if redis_pid else None
    wrk = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk once waited for; gunicorn is still running
    return (
        sum(process_cpu(pid) or 0.0 for pid in workers),
        redis_cpu,
        wrk.ru_utime + wrk.ru_stime,
        machine_busy(),
        time.monotonic(),
    )


def run_wrk(
    args: argparse.Namespace, lua: Path, url: str, seconds: int, workers=(), redis_pid: int | None = None
) -> WrkResult:
    command = [
        "wrk",
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(lua),
        "-H",
        f"User-Agent: {BROWSER_UA}",
        url,
    ]
    before = cpu_snapshot(workers, redis_pid)
    completed = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603 - our own wrk argv
    after = cpu_snapshot(workers, redis_pid)
    result = parse_wrk(completed.stdout)
    redis_cpu = None if before[1] is None or after[1] is None else after[1] - before[1]
    result.cpu = CpuUse(
        workers=after[0] - before[0],
        redis=redis_cpu,
        wrk=after[2] - before[2],
        machine_busy=after[3] - before[3],
        capacity=(after[4] - before[4]) * (os.cpu_count() or 1),
    )
    return result


def get(port: int, path: str, user_agent: str = BROWSER_UA) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"User-Agent": user_agent})
        response = conn.getresponse()
        response.read()
        return response
    finally:
        conn.close()


# --- In-process: what one request costs, and what it asks of the database and Redis -----------------


def wsgi_environ(path: str) -> dict:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_USER_AGENT": BROWSER_UA,
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


class RedisCommandCounter:
    """Counts the commands redis-py sends (any client in this process) while active."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def __enter__(self):
        from redis.connection import AbstractConnection

        self._cls = AbstractConnection
        self._original = AbstractConnection.send_command
        counter = self

        def send_command(conn, *args, **kwargs):
            counter.commands.append(str(args[0]))
            return counter._original(conn, *args, **kwargs)

        AbstractConnection.send_command = send_command
        return self

    def __exit__(self, *exc) -> None:
        self._cls.send_command = self._original


def call_app(app, path: str) -> tuple[str, list[tuple[str, str]]]:
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = status, headers

    result = app(wsgi_environ(path), start_response)
    try:
        b"".join(result)
    finally:
        result.close()  # sends request_finished, as a WSGI server does
    return seen["status"], seen["headers"]


def median_us(fn, n: int) -> tuple[float, float]:
    """Wall-clock and CPU (this process) µs per call of `fn`: the medians of 5 rounds of n calls."""
    walls, cpus = [], []
    for _ in range(5):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            fn()
        walls.append((time.perf_counter() - wall) / n * 1e6)
        cpus.append((time.process_time() - cpu) / n * 1e6)
    return statistics.median(walls), statistics.median(cpus)


def in_process(code: str, n: int) -> list[str]:
    """Per-request cost without the network, queries and Redis commands per request, and the pieces of /l/."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.db import connection
    from django.http import HttpResponseRedirect
    from django.test import RequestFactory
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from django.utils.cache import add_never_cache_headers

    from shops.attribution import attribution_cookie_set
    from shops.clicks import click_counter, is_bot, visitor_hash
    from shops.selectors import share_link_lookup
    from shops.services import share_link_follow

    app = WSGIHandler()
    real_path = f"/l/{code}"
    for path in (BARE_PATH, real_path):  # warm: URL resolver, link cache, Redis connections, lru caches
        for _ in range(50):
            call_app(app, path)

    lines = [
        "| in-process (one thread, no HTTP) | wall µs per request | CPU µs per request | DB queries | Redis commands |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for label, path in (("bare 302", BARE_PATH), ("/l/<code> (cache hit)", real_path)):
        with CaptureQueriesContext(connection) as queries, RedisCommandCounter() as redis_commands:
            status, _headers = call_app(app, path)
        if not status.startswith("302"):
            raise SystemExit(f"in-process GET {path} answered {status}, expected 302")
        wall, cpu = median_us(lambda path=path: call_app(app, path), n)
        commands = ", ".join(redis_commands.commands) or "none"
        lines.append(
            f"| {label} | {wall:.0f} | {cpu:.0f} | {len(queries)} | {len(redis_commands.commands)} ({commands}) |"
        )

    # The pieces the redirect adds to the bare view, each timed alone.
    target = share_link_lookup(code)
    request = RequestFactory().get(real_path, HTTP_USER_AGENT=BROWSER_UA)
    day = timezone.localdate()
    counter = click_counter()

    def set_cookie() -> None:
        attribution_cookie_set(
            request, HttpResponseRedirect(target.url), sharer_id=target.owner_id, link_id=target.link_id
        )

    pieces = [
        ("is_bot (lru-cached)", lambda: is_bot(BROWSER_UA)),
        (
            "visitor_hash (one HMAC-SHA256; the day's salt is cached)",
            lambda: visitor_hash(code=code, day=day, ip="127.0.0.1", user_agent=BROWSER_UA),
        ),
        (
            "click_counter().follow (one EVALSHA: cached target + count)",
            lambda: counter.follow(code=code, day=day, visitor="x"),
        ),
        (
            "share_link_follow (is_bot + visitor_hash + follow)",
            lambda: share_link_follow(code=code, ip="127.0.0.1", user_agent=BROWSER_UA),
        ),
        ("attribution_cookie_set (TimestampSigner)", set_cookie),
        (
            "  for comparison: add_never_cache_headers (the view sets the same headers directly)",
            lambda: add_never_cache_headers(HttpResponseRedirect(target.url)),
        ),
        ("  for comparison: a plain GET on the same kept redis-py client", lambda: counter.redis.get("cps:none")),
    ]
    lines += ["", "| piece of /l/<code>, timed alone | wall µs per call | CPU µs per call |", "| --- | ---: | ---: |"]
    for label, piece in pieces:
        wall, cpu = median_us(piece, n)
        lines.append(f"| {label} | {wall:.0f} | {cpu:.0f} |")
    return lines


# --- gunicorn and wrk ------------------------------------------------------------------------------


def start_gunicorn(config: GunicornConfig, port: int, database_url: str, error_log: Path) -> subprocess.Popen:
    gunicorn = Path(sys.executable).parent / "gunicorn"
    command = [
        str(gunicorn),
        "config.wsgi:application",
        "--chdir",
        str(REPO_ROOT),
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        config.worker_class,
        "--workers",
        str(config.workers),
        "--threads",
        str(config.threads),
        "--log-level",
        "warning",
        "--error-logfile",
        str(error_log),
    ]
    env = {**os.environ, "DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "bench.settings"}
    return subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603 - our own gunicorn argv


def stop_gunicorn(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # graceful: workers finish the requests they hold
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_up(process: subprocess.Popen, port: int, error_log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn exited with {process.returncode}:\n{error_log.read_text()}")
        with contextlib.suppress(OSError):
            if get(port, BARE_PATH).status == 302:
                return
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer on port {port} within 30 s:\n{error_log.read_text()}")


def check_answers(port: int, code: str, target_url: str) -> None:
    """Both endpoints answer what they should before anything is measured (wrk counts any 3xx as a success)."""
    bare = get(port, BARE_PATH)
    if bare.status != 302 or bare.getheader("Location") != "/":
        raise SystemExit(f"bare view answered {bare.status} to {bare.getheader('Location')!r}")
    real = get(port, f"/l/{code}")
    cookies = real.headers.get_all("Set-Cookie") or []
    if real.status != 302 or real.getheader("Location") != target_url:
        raise SystemExit(f"/l/{code} answered {real.status} to {real.getheader('Location')!r}, not 302 {target_url}")
    names = sorted(cookie.split("=", 1)[0] for cookie in cookies)
    if names != [ATTRIBUTION_COOKIE]:
        raise SystemExit(f"/l/{code} set cookies {names}, expected only {ATTRIBUTION_COOKIE}")


def stored_clicks(link) -> int:
    from django.db.models import Sum

    from shops.models import ShareLinkDailyStat

    return ShareLinkDailyStat.objects.filter(link=link).aggregate(n=Sum("clicks"))["n"] or 0


def read_py_spy(path: Path) -> dict[str, tuple[float, float]]:
    """From py-spy's raw output: per frame ("function (module file)"), the share of the samples it is in,
    and the share in which it is the innermost Python frame."""
    inclusive: dict[str, int] = {}
    innermost: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        # Leading elements name the process (the master, then the worker with --subprocesses).
        frames = [frame for frame in stack.split(";") if not frame.startswith("process ")]
        if not frames:
            continue
        total += int(count)
        for frame in set(frames):
            inclusive[frame] = inclusive.get(frame, 0) + int(count)
        innermost[frames[-1]] = innermost.get(frames[-1], 0) + int(count)
    if not total:
        return {}
    return {frame: (n / total, innermost.get(frame, 0) / total) for frame, n in inclusive.items()}


def profile_workers(args, lua: Path, url: str, master_pid: int, out: Path) -> tuple[dict, WrkResult]:
    """Sample every gunicorn worker (not the master, which only supervises) while wrk runs on `url`."""
    command = [
        args.py_spy,
        "record",
        "--pid",
        str(master_pid),
        "--subprocesses",
        "--nolineno",
        "--nonblocking",
        "--format",
        "raw",
        "--duration",
        str(args.profile_seconds + 2),
        "--output",
        str(out),
    ]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - py-spy, our argv
    time.sleep(1)
    result = run_wrk(args, lua, url, args.profile_seconds)
    spy.wait(timeout=args.profile_seconds + 60)
    return read_py_spy(out), result


def bench_config(config, args, link, target_url, database_url, workdir: Path, lua: Path, redis_pid) -> ConfigResult:
    from shops.services import clicks_flush

    port = free_port()
    error_log = workdir / f"gunicorn-{config.worker_class}-{config.workers}x{config.threads}.log"
    log(f"{config.label}: starting gunicorn on 127.0.0.1:{port}")
    process = start_gunicorn(config, port, database_url, error_log)
    rounds = []
    try:
        wait_until_up(process, port, error_log)
        check_answers(port, link.code, target_url)
        base = f"http://127.0.0.1:{port}"
        bare_url, real_url = base + BARE_PATH, f"{base}/l/{link.code}"
        log(f"{config.label}: warming up, {args.warmup} s per endpoint")
        run_wrk(args, lua, bare_url, args.warmup)
        run_wrk(args, lua, real_url, args.warmup)
        time.sleep(1)  # let the requests wrk left in flight finish before the baseline
        clicks_flush()
        before = stored_clicks(link)
        workers = child_pids(process.pid)
        if len(workers) != config.workers:
            raise SystemExit(f"expected {config.workers} gunicorn workers, found {len(workers)}")

        for n in range(1, args.rounds + 1):
            load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
            log(f"{config.label}: round {n}/{args.rounds} (load average {load}): wrk {args.duration} s on each")
            bare = run_wrk(args, lua, bare_url, args.duration, workers, redis_pid)
            real = run_wrk(args, lua, real_url, args.duration, workers, redis_pid)
            log(f"{config.label}: round {n}: bare {bare.rps:.0f} req/s, /l/ {real.rps:.0f} req/s")
            rounds.append((bare, real))
        paced = None
        if args.paced_rate:
            # wrk's delay() pauses a connection before each request: connections / rate seconds each.
            paced_lua = workdir / "paced.lua"
            pause_ms = args.connections * 1000 / args.paced_rate
            paced_lua.write_text(WRK_LUA + f"\nfunction delay()\n  return {pause_ms:.3f}\nend\n")
            log(f"{config.label}: paced run, about {args.paced_rate} req/s offered, wrk {args.duration} s on each")
            paced = (
                run_wrk(args, paced_lua, bare_url, args.duration, workers, redis_pid),
                run_wrk(args, paced_lua, real_url, args.duration, workers, redis_pid),
            )
        if sorted(child_pids(process.pid)) != sorted(workers):
            log(f"{config.label}: WARNING: gunicorn replaced workers during the run; CPU figures are incomplete")
        profiles = profile_real = None
        if args.py_spy:
            profiles = {}
            for label, url in (("bare 302", bare_url), ("/l/<code>", real_url)):
                log(f"{config.label}: py-spy on every worker, wrk {args.profile_seconds} s on {url}")
                profiles[label], profile_real = profile_workers(args, lua, url, process.pid, workdir / "py-spy.raw")
        time.sleep(1)
    finally:
        stop_gunicorn(process)
    problems = error_log.read_text().strip() if error_log.exists() else ""
    if problems:
        log(f"{config.label}: gunicorn error log:\n{problems}")
    clicks_flush()
    clicks = stored_clicks(link) - before
    log(f"{config.label}: clicks stored {clicks}")
    return ConfigResult(config, rounds, clicks, profiles, profile_real, paced)


# --- Report ------------------------------------------------------------------------------------------


def fmt_ms(value: float) -> str:
    return f"{value:.2f}" if value < 10 else f"{value:.1f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(results: list[ConfigResult]) -> list[str]:
    lines = [
        "| gunicorn | round | endpoint | req/s | p50 ms | p99 ms | errors | responses | requests sent |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for n, pair in enumerate(result.rounds, start=1):
            for label, wrk in zip(("bare 302", "/l/<code>"), pair, strict=True):
                lines.append(
                    f"| {result.config.label} | {n} | {label} | {wrk.rps:,.0f} | {fmt_ms(wrk.p50_ms)} "
                    f"| {fmt_ms(wrk.p99_ms)} | {wrk.errors} | {wrk.requests:,} | {wrk.sent:,} |"
                )
    for result in results:
        if result.paced:
            for label, wrk in zip(("bare 302", "/l/<code>"), result.paced, strict=True):
                lines.append(
                    f"| {result.config.label} | paced | {label} | {wrk.rps:,.0f} | {fmt_ms(wrk.p50_ms)} "
                    f"| {fmt_ms(wrk.p99_ms)} | {wrk.errors} | {wrk.requests:,} | {wrk.sent:,} |"
                )
    lines.append("")
    for result in results:
        quiet = result.quiet_rounds
        ratios = [real.rps / bare.rps for bare, real in quiet]
        real_p99 = [real.p99_ms for _bare, real in quiet]
        bare_p99 = [bare.p99_ms for bare, _real in quiet]
        errors = sum(bare.errors + real.errors for bare, real in [*result.rounds, *filter(None, [result.paced])])
        ratio = statistics.median(ratios)
        disturbed = [str(n + 1) for n in range(len(result.rounds)) if result.disturbed(n)]
        if not disturbed:
            used = f"all {len(result.rounds)} rounds"
        elif len(quiet) < len(result.rounds):
            used = f"rounds other than {', '.join(disturbed)} (disturbed by other load)"
        else:
            used = "every round was disturbed by other load: figures unreliable"
        checks = [
            f"ratio real/bare {ratio:.2f} median of {', '.join(f'{r:.2f}' for r in ratios)} "
            f"({verdict(ratio >= 0.6)}, target ≥ 0.6)",
            f"/l/ p99 {fmt_ms(min(real_p99))}–{fmt_ms(max(real_p99))} ms ({verdict(max(real_p99) <= 25)}, "
            f"target ≤ 25 ms; bare p99 {fmt_ms(min(bare_p99))}–{fmt_ms(max(bare_p99))} ms)",
            *(
                [
                    f"paced at {result.paced[1].rps:,.0f} req/s: /l/ p99 {fmt_ms(result.paced[1].p99_ms)} ms "
                    f"({verdict(result.paced[1].p99_ms <= 25)}; bare p99 {fmt_ms(result.paced[0].p99_ms)} ms)"
                ]
                if result.paced
                else []
            ),
            f"errors {errors} ({verdict(errors == 0)})",
            f"clicks stored {result.clicks_stored:,} vs /l/ requests sent {result.sent:,}"
            f"{' (with the py-spy run)' if result.profile_real else ''} "
            f"({verdict(result.clicks_stored == result.sent)}; responses received {result.received:,})",
        ]
        if errors:
            for n, (bare, real) in enumerate(result.rounds, start=1):
                for name, wrk in (("bare", bare), ("/l/", real)):
                    checks.append(
                        f"round {n} {name}: socket errors {wrk.socket_errors}, non-2xx/3xx {wrk.non_2xx_3xx}, "
                        f"non-302 {wrk.not_302}"
                    )
        lines.append(f"- {result.config.label} ({used}): " + "; ".join(checks))

    lines += [
        "",
        "| gunicorn | round | endpoint | workers CPU µs/req | redis-server CPU µs/req | wrk CPU µs/req "
        "| rest of machine, % of all CPUs | machine busy % |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        for n, pair in enumerate(result.rounds, start=1):
            for label, wrk in zip(("bare 302", "/l/<code>"), pair, strict=True):
                cpu, per = wrk.cpu, 1e6 / max(wrk.requests, 1)
                redis_us = "?" if cpu.redis is None else f"{cpu.redis * per:.0f}"
                lines.append(
                    f"| {result.config.label} | {n} | {label} | {cpu.workers * per:.0f} | {redis_us} "
                    f"| {cpu.wrk * per:.0f} | {cpu.rest_share * 100:.0f} "
                    f"| {cpu.machine_busy / cpu.capacity * 100:.0f} |"
                )
    for result in results:
        if result.profiles:
            lines += ["", *profile_table(result)]
    return lines


def profile_table(result: ConfigResult, top: int = 40) -> list[str]:
    """Where the workers' samples go under /l/, beside the bare view; the frames of gunicorn's and Django's
    request loop that nearly every sample of both endpoints is in are left out."""
    bare, real = result.profiles["bare 302"], result.profiles["/l/<code>"]
    lines = [
        f"py-spy, {result.config.label}: share of the workers' samples (idle ones excluded) with the frame on the "
        "stack (incl.) or as the innermost Python frame (self)",
        "",
        "| frame | /l/<code> incl. % | /l/<code> self % | bare 302 incl. % | bare 302 self % |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    frames = [
        (frame, shares)
        for frame, shares in real.items()
        if not (shares[0] > 0.9 and bare.get(frame, (0.0, 0.0))[0] > 0.9)
    ]
    for frame, (incl, own) in sorted(frames, key=lambda item: -item[1][0])[:top]:
        bare_incl, bare_own = bare.get(frame, (0.0, 0.0))
        lines.append(
            f"| `{frame}` | {incl * 100:.1f} | {own * 100:.1f} | {bare_incl * 100:.1f} | {bare_own * 100:.1f} |"
        )
    return lines


def machine() -> str:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lock = LOCK_FILE.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        print(
            f"another bench/redirect.py is running (pid {lock.read().strip() or '?'}, lock {LOCK_FILE}); "
            "two runs would share the CPU, the throwaway database and the Redis keys.",
            file=sys.stderr,
        )
        return 2
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    if shutil.which("wrk") is None:
        print("bench/redirect.py needs wrk on PATH (apt-get install wrk).", file=sys.stderr)
        return 2
    original_url = os.environ.get("DATABASE_URL", "")
    configure_environment(args.redis_url)
    setup_django()

    import django
    import redis
    from django.db import connection
    from django.urls import reverse

    from accounts.models import User
    from referrals.services import member_join
    from shops.clicks import click_counter
    from shops.services import clicks_flush, share_link_create, shop_open

    if connection.vendor != "postgresql":
        print(
            f"bench/redirect.py needs PostgreSQL, but DATABASE_URL gives a {connection.vendor} database. "
            "Set DATABASE_URL=postgres://user@host:5432/name (the named database is not touched; "
            "a throwaway one is created beside it).",
            file=sys.stderr,
        )
        return 2
    if click_counter().__class__.__name__ != "RedisClickCounter":
        raise SystemExit("clicks are not counted in Redis; check --redis-url")

    redis_client = redis.Redis.from_url(args.redis_url)
    log(f"Redis {args.redis_url}: deleted {redis_clear(redis_client)} leftover click/link keys")
    old_name = connection.settings_dict["NAME"]
    test_name = f"test_bench_redirect_{old_name}"
    connection.settings_dict["TEST"]["NAME"] = test_name
    log(f"creating throwaway database {test_name} (DATABASE_URL's database {old_name} is not touched)")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            pg_version = cursor.fetchone()[0]
        redis_info = redis_client.info("server")
        redis_version, redis_pid = redis_info["redis_version"], redis_info.get("process_id")
        if redis_pid and process_cpu(redis_pid) is None:
            redis_pid = None  # another host or namespace: its CPU is not counted
        gunicorn_version = subprocess.run(  # noqa: S603 - the venv's gunicorn, fixed argv
            [str(Path(sys.executable).parent / "gunicorn"), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        log(
            f"{machine()}, PostgreSQL {pg_version}, Redis {redis_version}, Django {django.get_version()}, "
            f"{gunicorn_version}"
        )

        user = User.objects.create_user(f"sharer@{INVALID_EMAIL_DOMAIN}", None)
        member = member_join(user=user)
        shop = shop_open(owner=member, name="Bench shop", slug="bench-shop")
        link = share_link_create(owner=member)
        target_url = reverse("shops:shop_home", args=[shop.slug])
        log(f"share link /l/{link.code} -> {target_url}")

        log(f"in-process: {args.inprocess} requests of each kind, 5 times")
        inprocess_lines = in_process(link.code, args.inprocess)
        clicks_flush()  # the in-process clicks; each configuration below takes its own baseline anyway

        database_url = url_with_database(original_url, test_name)
        results = []
        with tempfile.TemporaryDirectory(prefix="bench-redirect-") as tmp:
            workdir = Path(tmp)
            lua = workdir / "count.lua"
            lua.write_text(WRK_LUA)
            for config in args.gunicorn:
                results.append(bench_config(config, args, link, target_url, database_url, workdir, lua, redis_pid))

        print(
            f"wrk -t{args.wrk_threads} -c{args.connections} -d{args.duration}s --latency, {args.rounds} rounds "
            f"(after {args.warmup} s warm-up per endpoint); {machine()}; PostgreSQL {pg_version}, "
            f"Redis {redis_version}, Django {django.get_version()}, {gunicorn_version}; "
            "link targets and clicks in Redis (one call per redirect)\n"
        )
        print("\n".join(report(results)))
        print()
        print("\n".join(inprocess_lines), flush=True)
    finally:
        redis_clear(redis_client)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
