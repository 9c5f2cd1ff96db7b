"""Every beat entry expires no later than its next run is due (config/beat.py): with the workers down, runs are
dropped, never piled up."""

import itertools
from datetime import timedelta

from celery.schedules import crontab
from django.conf import settings

from config.beat import LONGEST_EXPIRY, beat_expiry, with_expiry


def period(schedule) -> float:
    """The shortest time between two runs, found by walking a day minute by minute (independent of beat_expiry)."""
    if not isinstance(schedule, crontab):
        return schedule.total_seconds() if isinstance(schedule, timedelta) else float(schedule)
    runs = [m for m in range(2 * 24 * 60) if (m // 60) % 24 in schedule.hour and m % 60 in schedule.minute]
    return min(later - earlier for earlier, later in itertools.pairwise(runs)) * 60


def test_every_entry_of_the_project_expires_by_its_next_run():
    assert settings.CELERY_BEAT_SCHEDULE
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        expires = entry["options"]["expires"]
        assert 0 < expires <= min(period(entry["schedule"]), LONGEST_EXPIRY.total_seconds()), name


def test_the_expiry_of_each_kind_of_schedule():
    assert beat_expiry(5.0) == 5.0
    assert beat_expiry(timedelta(minutes=2)) == 120.0
    assert beat_expiry(crontab(minute="*/15")) == 900
    assert beat_expiry(crontab(minute=5)) == 3600
    assert beat_expiry(crontab(minute="0,50")) == 600  # 00:50 to 01:00 is the shortest gap
    assert beat_expiry(crontab(hour="23,1", minute=30)) == 2 * 3600  # across midnight: 23:30 to 01:30
    assert beat_expiry(crontab(hour=3, minute=17)) == LONGEST_EXPIRY.total_seconds()


def test_an_expiry_an_entry_sets_itself_is_kept():
    schedule = with_expiry(
        {"a": {"task": "t", "schedule": 60.0, "options": {"expires": 10}}, "b": {"task": "t", "schedule": 30.0}}
    )
    assert (schedule["a"]["options"], schedule["b"]["options"]) == ({"expires": 10}, {"expires": 30.0})
