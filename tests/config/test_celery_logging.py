"""Log redaction holds in every process, not only in the web process: a real Celery worker (its main process and
its prefork pool) and a real beat log contact details and a token masked, however the line is written.

The worker and beat take over the root logger (worker_hijack_root_logger) and install handlers of their own, so the
filters settings.LOGGING puts on its handlers would be gone without config.celery's logging hooks.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import suppress
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.config.log_probe_app import LINE, MASKED, RAW

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"


def start(args: list[str], log: Path, **env: str) -> subprocess.Popen:
    with log.open("wb") as output:
        return subprocess.Popen(
            [str(CELERY), "-A", "tests.config.log_probe_app", *args],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen) -> None:
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def wait_for_lines(log: Path, needles: list[str], process: subprocess.Popen, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if all(needle in text for needle in needles):
            return text
        if process.poll() is not None:
            break
        time.sleep(0.3)
    raise AssertionError(f"not all of {needles} in the log:\n{text[-4000:]}")


def assert_masked(text: str, marker: str, kinds: list[str]) -> None:
    lines = [line for line in text.splitlines() if marker in line]
    assert lines
    for kind in kinds:
        assert any(f"{marker} {kind} {MASKED}" in line for line in lines), (kind, lines)
    for raw in RAW:
        assert not any(raw in line for line in lines), (raw, lines)


@pytest.mark.broker
def test_a_worker_masks_contact_details_and_tokens_in_every_log_line(tmp_path):
    from config.celery import app

    queue, marker = f"log-probe-{uuid.uuid4().hex[:8]}", f"probe-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "worker.log"
    worker = start(
        [
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--loglevel=INFO",
            f"--queues={queue}",
            f"--hostname={queue}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        log,
    )
    try:
        wait_for_lines(log, ["ready."], worker)
        app.send_task("tests.log_probe", args=[marker], queue=queue)
        kinds = ["app", "task", "celery", "print"]
        text = wait_for_lines(log, [f"{marker} {kind} " for kind in kinds], worker)
    finally:
        stop(worker)
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        broker.delete(queue)
        broker.close()

    assert_masked(text, marker, kinds)
    assert LINE not in text


def test_beat_masks_contact_details_and_tokens(tmp_path):
    marker = f"probe-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "beat.log"
    beat = start(
        ["beat", "--loglevel=INFO", f"--schedule={tmp_path / 'beat-schedule'}"],
        log,
        LOG_PROBE_MARKER=marker,
        # beat only starts here: it sends nothing, whichever broker is set
        CELERY_BROKER_URL=os.environ.get("CELERY_BROKER_URL") or "memory://",
    )
    try:
        text = wait_for_lines(log, [f"{marker} beat "], beat)
    finally:
        stop(beat)

    assert_masked(text, marker, ["beat"])
