"""A Celery worker process of the fault suite: `python -m tests.faults.worker_main NAME READY_FILE`.

The project's own worker (`celery -A config worker`), started from here so that a scenario can install its fault
first: with FAULTS_DUPLICATES=SEED every task this worker sends is published two or three times. READY_FILE is
written once the worker consumes, so the suite never sends into a worker that is still starting.
"""

import os
import sys
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from celery.signals import worker_ready  # noqa: E402

from config.celery import app  # noqa: E402
from tests.faults.injection import duplicate_publishes  # noqa: E402


def main() -> None:
    name, ready_file = sys.argv[1], Path(sys.argv[2])
    if os.environ.get("FAULTS_DUPLICATES"):
        duplicate_publishes(seed=int(os.environ["FAULTS_DUPLICATES"]))

    @worker_ready.connect(weak=False)
    def _ready(**_kwargs):
        ready_file.write_text(str(os.getpid()))

    app.worker_main(
        [
            "worker",
            f"--hostname={name}@%h",
            "--pool=prefork",
            "--concurrency=1",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


if __name__ == "__main__":
    main()
