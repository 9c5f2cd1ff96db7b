"""Request ids (core/request_id.py) and JSON logs (LOG_FORMAT=json): every request gets an id, its log lines carry
it, including those Django writes after the view, and so do the lines of the tasks it sends, on a real worker."""

import json
import re
import uuid

import pytest
import redis
from django.conf import settings
from django.test import Client

from core import request_id as request_ids
from tests.config.log_probe_app import MASKED
from tests.config.test_celery_logging import start, stop, wait_for_lines
from tests.config.test_settings import run_python


def test_each_request_gets_an_id_and_a_proxys_id_is_kept_when_it_looks_like_one():
    client = Client()
    first, second = client.get("/healthz"), client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", first["X-Request-ID"]) and first["X-Request-ID"] != second["X-Request-ID"]
    assert client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a9c2e-01")["X-Request-ID"] == "lb-7f3a9c2e-01"
    for forged in ("short", "has space in it", "x" * 65, "inject\nline-0001"):
        assert re.fullmatch(r"[0-9a-f]{32}", client.get("/healthz", HTTP_X_REQUEST_ID=forged)["X-Request-ID"])
    assert request_ids.request_id() == ""  # nothing stays bound after the request


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_json_logs_carry_the_request_id_even_for_lines_written_after_the_view():
    probe = (
        "import django, logging; django.setup(); from django.test import Client; "
        "Client().get('/no-such-page/', HTTP_X_REQUEST_ID='probe-1234abcd'); "
        "logging.getLogger('shops.probe').warning('buyer li.na@example.com outside a request')"
    )
    result = run_python(probe, LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = json_lines(result.stderr)
    [not_found] = [line for line in lines if line["logger"] == "django.request"]
    assert not_found["request_id"] == "probe-1234abcd" and not_found["message"] == "Not Found: /no-such-page/"
    assert not_found["level"] == "WARNING" and not_found["time"].endswith("+00:00")
    [outside] = [line for line in lines if line["logger"] == "shops.probe"]
    assert outside["request_id"] == "-" and outside["message"] == "buyer l***@example.com outside a request"


def test_an_unknown_log_format_is_refused():
    result = run_python("import django; django.setup()", LOG_FORMAT="xml")
    assert result.returncode != 0 and "LOG_FORMAT must be json or text, not 'xml'" in result.stderr


@pytest.mark.broker
def test_a_task_sent_during_a_request_logs_the_requests_id_on_a_real_worker(tmp_path):
    from config.celery import app

    queue, marker = f"log-probe-{uuid.uuid4().hex[:8]}", f"probe-{uuid.uuid4().hex[:8]}"
    the_id = f"req-{uuid.uuid4().hex[:12]}"
    log = tmp_path / "worker.log"
    worker = start(
        ["worker", "--pool=prefork", "--concurrency=1", "--loglevel=INFO", f"--queues={queue}",
         f"--hostname={queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        log,
        LOG_FORMAT="json",
    )  # fmt: skip
    try:
        wait_for_lines(log, ["ready."], worker)
        token = request_ids._current.set(the_id)  # as the web request that sends it has it bound
        try:
            app.send_task("tests.log_probe", args=[marker], queue=queue)
        finally:
            request_ids._current.reset(token)
        text = wait_for_lines(log, [f"{marker} app ", f"{marker} task "], worker)
    finally:
        stop(worker)
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        broker.delete(queue)
        broker.close()
    lines = [line for line in json_lines(text) if marker in line.get("message", "")]
    kinds = {line["message"].split()[1]: line for line in lines}
    assert {"app", "task"} <= set(kinds)
    for kind in ("app", "task"):
        assert kinds[kind]["request_id"] == the_id and kinds[kind]["message"] == f"{marker} {kind} {MASKED}"
