"""`manage.py runserver` (what `make run` serves with), which also runs the beat schedule in the embedded default.

Django's development server (with static files, as django.contrib.staticfiles serves them) plus, when
settings.EMBEDDED_SCHEDULER is on, the embedded scheduler (config/scheduler.py). It starts once the server is
bound, so only in the process that serves: the autoreloader's watching parent never binds, and a restart after a
code change is a new process with a scheduler of its own. It stops with the server (Ctrl-C, a reload, an exit).
"""

from django.conf import settings
from django.contrib.staticfiles.management.commands.runserver import Command as StaticFilesRunserverCommand

from config.scheduler import embedded_scheduler_start, embedded_scheduler_stop


class Command(StaticFilesRunserverCommand):
    help = (
        "Starts a lightweight web server for development, serves static files and, in the embedded default "
        "(EMBEDDED_SCHEDULER), runs the periodic tasks of CELERY_BEAT_SCHEDULE in-process."
    )

    def inner_run(self, *args, **options):
        try:
            super().inner_run(*args, **options)
        finally:
            embedded_scheduler_stop()

    def on_bind(self, server_port):
        super().on_bind(server_port)
        if embedded_scheduler_start() is not None:
            self.stdout.write(
                "Periodic tasks: run by this server on their beat schedule (EMBEDDED_SCHEDULER=0 turns this off)."
            )
        elif not settings.CELERY_BROKER_URL:
            self.stdout.write(
                self.style.WARNING(
                    "Periodic tasks: not run (EMBEDDED_SCHEDULER=0 and no broker): clicks are not counted, "
                    "commission is not released and unpaid orders are not cancelled."
                )
            )
        else:
            self.stdout.write("Periodic tasks: run by `celery beat` through the broker (CELERY_BROKER_URL).")
