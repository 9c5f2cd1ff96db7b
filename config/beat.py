"""Every beat entry expires (issue #26): a run the workers have not started by the time the next one is due is
dropped, not queued. With the workers down for a day, the 5-second tree-index entry alone would otherwise leave
17,280 messages waiting, all doing the same work when the workers come back. Every periodic task is a sweep that
finds its own work (docs/schedule.md), so a dropped run loses nothing: the next one does it.
"""

import itertools
from datetime import timedelta

from celery.schedules import crontab

LONGEST_EXPIRY = timedelta(hours=6)  # a nightly run held up longer than this waits for the next night


def beat_expiry(schedule) -> float:
    """Seconds after which a run of `schedule` expires: its interval (an interval in seconds or a timedelta), or the
    shortest gap between two runs of a crontab within a day; at most LONGEST_EXPIRY."""
    if isinstance(schedule, crontab):
        minutes = sorted(hour * 60 + minute for hour in schedule.hour for minute in schedule.minute)
        gaps = [later - earlier for earlier, later in itertools.pairwise(minutes)]
        gaps.append(minutes[0] + 24 * 60 - minutes[-1])  # from the day's last run to the next day's first
        seconds = min(gaps) * 60
    elif isinstance(schedule, timedelta):
        seconds = schedule.total_seconds()
    else:
        seconds = float(schedule)
    return min(seconds, LONGEST_EXPIRY.total_seconds())


def with_expiry(schedule: dict) -> dict:
    """`schedule` (CELERY_BEAT_SCHEDULE) with `options.expires` set on every entry that has none."""
    for entry in schedule.values():
        entry.setdefault("options", {}).setdefault("expires", beat_expiry(entry["schedule"]))
    return schedule
