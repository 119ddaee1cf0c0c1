"""Quiet hours and one task a day, in the patient's zone, across DST."""

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from care.schedule import hm, out_of_quiet, place

CHI, KOL = ZoneInfo("America/Chicago"), ZoneInfo("Asia/Kolkata")
Q = (hm("21:00"), hm("08:00"))


def utc(*a):
    return datetime(*a, tzinfo=timezone.utc)


def test_outside_quiet_hours_is_unchanged():
    t = utc(2026, 1, 15, 18, 0)  # 12:00 in Chicago
    assert out_of_quiet(t, CHI, *Q) == t


def test_evening_moves_to_next_morning_across_midnight():
    t = utc(2026, 1, 16, 4, 30)  # 22:30 Jan 15 in Chicago
    assert out_of_quiet(t, CHI, *Q) == utc(2026, 1, 16, 14, 0)  # 08:00 CST Jan 16


def test_early_morning_moves_to_same_morning():
    t = utc(2026, 1, 15, 9, 0)  # 03:00 CST
    assert out_of_quiet(t, CHI, *Q) == utc(2026, 1, 15, 14, 0)


def test_quiet_end_is_exclusive_and_start_inclusive():
    assert out_of_quiet(utc(2026, 1, 15, 14, 0), CHI, *Q) == utc(2026, 1, 15, 14, 0)  # 08:00 sharp
    assert out_of_quiet(utc(2026, 1, 16, 3, 0), CHI, *Q) == utc(2026, 1, 16, 14, 0)  # 21:00 sharp


def test_spring_forward_day_uses_daylight_time():
    # 2026-03-08: Chicago jumps from 02:00 CST to 03:00 CDT. 01:30 CST -> 08:00 CDT = 13:00 UTC.
    assert out_of_quiet(utc(2026, 3, 8, 7, 30), CHI, *Q) == utc(2026, 3, 8, 13, 0)


def test_fall_back_day_uses_standard_time():
    # 2026-11-01: Chicago falls back at 02:00 CDT. 05:00 CST -> 08:00 CST = 14:00 UTC.
    assert out_of_quiet(utc(2026, 11, 1, 11, 0), CHI, *Q) == utc(2026, 11, 1, 14, 0)


def test_zone_east_of_utc():
    t = utc(2026, 3, 1, 16, 0)  # 21:30 IST
    assert out_of_quiet(t, KOL, *Q) == utc(2026, 3, 2, 2, 30)  # 08:00 IST next day


def test_same_day_quiet_window():
    lunch = (hm("12:00"), hm("13:30"))
    assert out_of_quiet(utc(2026, 1, 15, 18, 15), CHI, *lunch) == utc(2026, 1, 15, 19, 30)
    assert out_of_quiet(utc(2026, 1, 15, 20, 0), CHI, *lunch) == utc(2026, 1, 15, 20, 0)


def test_one_task_a_local_day_moves_on_while_taken():
    taken = set()
    first = place(utc(2026, 1, 15, 18, 0), CHI, *Q, taken)
    second = place(utc(2026, 1, 15, 20, 0), CHI, *Q, taken)  # same local day
    third = place(utc(2026, 1, 16, 22, 0), CHI, *Q, taken)  # Jan 16 local: taken by second
    assert first == utc(2026, 1, 15, 18, 0)
    assert second == utc(2026, 1, 16, 14, 0)  # 08:00 next local day
    assert third == utc(2026, 1, 17, 14, 0)
    assert taken == {date(2026, 1, 15), date(2026, 1, 16), date(2026, 1, 17)}


def test_local_day_not_utc_day_counts():
    taken = set()
    a = place(utc(2026, 3, 1, 19, 0), KOL, *Q, taken)  # 00:30 IST Mar 2 -> quiet -> 08:00 IST Mar 2
    b = place(utc(2026, 3, 1, 5, 0), KOL, *Q, taken)  # 10:30 IST Mar 1: a different local day
    assert a == utc(2026, 3, 2, 2, 30) and b == utc(2026, 3, 1, 5, 0)
