"""Quiet hours and the one-task-a-day rule, in the patient's own time zone (daylight saving included).

Offsets are exact durations on the UTC instant; zones matter only here.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo


def hm(text: str) -> time:
    h, m = text.split(":")
    return time(int(h), int(m))


def _at(day: date, t: time, zone: ZoneInfo) -> datetime:
    # A wall time in a DST gap resolves forward (fold=0), as clocks that jump do.
    return datetime.combine(day, t, tzinfo=zone).astimezone(timezone.utc)


def in_quiet(local: datetime, start: time, end: time) -> bool:
    t = local.timetz().replace(tzinfo=None)
    if start == end:
        return False
    if start > end:  # crosses midnight, e.g. 21:00 to 08:00
        return t >= start or t < end
    return start <= t < end


def out_of_quiet(instant: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    """The instant itself, or the end of the quiet window it falls in."""
    local = instant.astimezone(zone)
    if not in_quiet(local, start, end):
        return instant
    day = local.date()
    if start > end and local.timetz().replace(tzinfo=None) >= start:
        day += timedelta(days=1)  # evening: the window ends tomorrow morning
    return _at(day, end, zone)


def local_day(instant: datetime, zone: ZoneInfo) -> date:
    return instant.astimezone(zone).date()


def place(due_at: datetime, zone: ZoneInfo, start: time, end: time, taken: set[date]) -> datetime:
    """send_after for a patient task: out of quiet hours, then on to the next free local day."""
    send = out_of_quiet(due_at, zone, start, end)
    while local_day(send, zone) in taken:
        send = _at(local_day(send, zone) + timedelta(days=1), end, zone)
    taken.add(local_day(send, zone))
    return send
