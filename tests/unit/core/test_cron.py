"""Cron schedules (cadenza.core.cron): every piece of syntax, the next match, and the errors."""

from __future__ import annotations

import dataclasses
import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest

from cadenza.core.cron import MACROS, CronSchedule, backoff_seconds
from cadenza.error import BadRequestError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
       milli: int = 0) -> int:
    moment = datetime(year, month, day, hour, minute, second, milli * 1000, tzinfo=UTC)
    return (moment - EPOCH) // timedelta(milliseconds=1)


def at(epoch_ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=epoch_ms)


def next_after(expression: str, epoch_ms: int) -> datetime:
    return at(CronSchedule.parse(expression).next_after(epoch_ms))


def matches(expression: str, start: int, count: int) -> list[datetime]:
    schedule = CronSchedule.parse(expression)
    found, moment = [], start
    for _ in range(count):
        moment = schedule.next_after(moment)
        found.append(at(moment))
    return found


def dt(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- the next match -------------------------------------------------------------------------


def test_every_minute_is_the_next_whole_minute_strictly_after() -> None:
    assert next_after("* * * * *", ms(2024, 5, 1, 12, 0)) == dt(2024, 5, 1, 12, 1)
    assert next_after("* * * * *", ms(2024, 5, 1, 12, 0, 0, 1)) == dt(2024, 5, 1, 12, 1)
    assert next_after("* * * * *", ms(2024, 5, 1, 12, 0, 59, 999)) == dt(2024, 5, 1, 12, 1)
    assert next_after("* * * * *", ms(2024, 5, 1, 11, 59, 59, 999)) == dt(2024, 5, 1, 12, 0)


def test_an_instant_on_a_match_gives_the_following_match() -> None:
    assert next_after("30 14 * * *", ms(2024, 5, 1, 14, 30)) == dt(2024, 5, 2, 14, 30)
    assert next_after("30 14 * * *", ms(2024, 5, 1, 14, 29, 59, 999)) == dt(2024, 5, 1, 14, 30)


def test_numbers_pick_one_minute_and_hour() -> None:
    assert next_after("30 14 * * *", ms(2024, 5, 1, 9, 0)) == dt(2024, 5, 1, 14, 30)
    assert next_after("30 14 * * *", ms(2024, 5, 1, 15, 0)) == dt(2024, 5, 2, 14, 30)
    assert next_after("0 0 * * *", ms(2024, 5, 1, 0, 0)) == dt(2024, 5, 2)


def test_ranges_include_both_ends() -> None:
    assert [m.minute for m in matches("10-12 * * * *", ms(2024, 5, 1, 0, 0), 4)] == [
        10, 11, 12, 10,
    ]
    assert matches("0 22-23 * * *", ms(2024, 5, 1, 21, 0), 3) == [
        dt(2024, 5, 1, 22), dt(2024, 5, 1, 23), dt(2024, 5, 2, 22),
    ]


def test_steps_over_the_whole_field_over_a_range_and_from_a_start() -> None:
    assert [m.minute for m in matches("*/15 * * * *", ms(2024, 5, 1, 0, 0), 5)] == [
        15, 30, 45, 0, 15,
    ]
    assert [m.minute for m in matches("10-30/10 * * * *", ms(2024, 5, 1, 0, 0), 4)] == [
        10, 20, 30, 10,
    ]
    assert [m.minute for m in matches("5/20 * * * *", ms(2024, 5, 1, 0, 0), 4)] == [
        5, 25, 45, 5,
    ]
    assert [m.hour for m in matches("0 */6 * * *", ms(2024, 5, 1, 0, 0), 4)] == [6, 12, 18, 0]
    assert [m.day for m in matches("0 0 */10 * *", ms(2024, 5, 1, 0, 0), 4)] == [11, 21, 31, 1]
    assert CronSchedule.parse("*/100 * * * *").minutes == (0,)  # a step beyond the field


def test_lists_mix_numbers_ranges_and_steps() -> None:
    assert CronSchedule.parse("1,15,45 * * * *").minutes == (1, 15, 45)
    assert CronSchedule.parse("0,20-22,*/30 * * * *").minutes == (0, 20, 21, 22, 30)
    assert CronSchedule.parse("0 9-17/4,23 * * *").hours == (9, 13, 17, 23)
    assert CronSchedule.parse("5,5,5 * * * *").minutes == (5,)


def test_month_and_weekday_names_in_any_case() -> None:
    assert CronSchedule.parse("0 0 1 jan,Jul,DEC *").months == (1, 7, 12)
    assert CronSchedule.parse("0 0 1 JAN-DEC/3 *").months == (1, 4, 7, 10)
    assert CronSchedule.parse("0 0 * * mon-FRI").days_of_week == (1, 2, 3, 4, 5)
    assert CronSchedule.parse("0 0 * * Sun,sat").days_of_week == (0, 6)
    assert CronSchedule.parse("0 0 1 feb-4 *").months == (2, 3, 4)  # names and numbers mix
    # 2024-05-04 is a Saturday: the next weekday is Monday the 6th.
    assert next_after("0 9 * * MON-FRI", ms(2024, 5, 4, 12, 0)) == dt(2024, 5, 6, 9)


@pytest.mark.parametrize("sunday", ["0", "7", "SUN", "sun"])
def test_zero_and_seven_are_both_sunday(sunday: str) -> None:
    schedule = CronSchedule.parse(f"0 0 * * {sunday}")
    assert schedule.days_of_week == (0,)
    found = at(schedule.next_after(ms(2024, 5, 1)))
    assert found == dt(2024, 5, 5)
    assert found.isoweekday() == 7


def test_weekday_ranges_may_end_on_seven() -> None:
    assert CronSchedule.parse("0 0 * * 5-7").days_of_week == (0, 5, 6)
    assert CronSchedule.parse("0 0 * * 0-7").days_of_week == tuple(range(7))
    assert CronSchedule.parse("0 0 * * */2").days_of_week == (0, 2, 4, 6)


@pytest.mark.parametrize("macro", sorted(MACROS))
def test_macros_equal_their_fields(macro: str) -> None:
    expanded = CronSchedule.parse(MACROS[macro])
    for spelling in (macro, macro.upper(), f"  {macro} "):
        schedule = CronSchedule.parse(spelling)
        assert dataclasses.replace(schedule, text=expanded.text) == expanded


def test_macros_fire_when_cron_says() -> None:
    start = ms(2024, 5, 15, 10, 30)
    assert next_after("@yearly", start) == dt(2025, 1, 1)
    assert next_after("@annually", start) == dt(2025, 1, 1)
    assert next_after("@monthly", start) == dt(2024, 6, 1)
    assert next_after("@weekly", start) == dt(2024, 5, 19)  # a Sunday
    assert next_after("@daily", start) == dt(2024, 5, 16)
    assert next_after("@midnight", start) == dt(2024, 5, 16)
    assert next_after("@hourly", start) == dt(2024, 5, 15, 11)


def test_minute_hour_day_month_and_year_roll_over() -> None:
    assert next_after("5 * * * *", ms(2024, 5, 1, 10, 6)) == dt(2024, 5, 1, 11, 5)
    assert next_after("5 3 * * *", ms(2024, 5, 1, 10, 0)) == dt(2024, 5, 2, 3, 5)
    assert next_after("0 0 1 * *", ms(2024, 5, 1, 0, 1)) == dt(2024, 6, 1)
    assert next_after("* * * * *", ms(2024, 12, 31, 23, 59)) == dt(2025, 1, 1)
    assert next_after("0 0 1 6 *", ms(2024, 7, 1)) == dt(2025, 6, 1)
    assert next_after("59 23 31 12 *", ms(2024, 12, 31, 23, 59)) == dt(2025, 12, 31, 23, 59)
    assert next_after("0 0 30 * *", ms(2024, 1, 30, 1)) == dt(2024, 3, 30)  # February has none


def test_months_without_the_day_are_skipped() -> None:
    assert next_after("0 0 31 * *", ms(2024, 4, 1)) == dt(2024, 5, 31)
    assert matches("0 0 31 * *", ms(2024, 1, 31), 4) == [
        dt(2024, 3, 31), dt(2024, 5, 31), dt(2024, 7, 31), dt(2024, 8, 31),
    ]


def test_february_29th_waits_for_a_leap_year() -> None:
    assert next_after("0 0 29 2 *", ms(2023, 3, 1)) == dt(2024, 2, 29)
    assert next_after("0 0 29 2 *", ms(2024, 2, 29)) == dt(2028, 2, 29)
    assert next_after("0 0 29 2 *", ms(2096, 3, 1)) == dt(2104, 2, 29)  # 2100 is no leap year
    assert next_after("0 12 29 2 *", ms(2000, 2, 28)) == dt(2000, 2, 29, 12)  # 2000 is one
    assert next_after("0 0 * 2 *", ms(2023, 2, 28)) == dt(2024, 2, 1)  # no 29th in 2023
    assert next_after("0 0 * 2 *", ms(2024, 2, 28)) == dt(2024, 2, 29)


def test_days_match_either_field_when_both_are_restricted() -> None:
    # The 13th of each month, and every Friday (Vixie cron's rule).
    found = matches("0 0 13 * FRI", ms(2024, 9, 1), 7)
    assert found == [dt(2024, 9, 6), dt(2024, 9, 13), dt(2024, 9, 20), dt(2024, 9, 27),
                     dt(2024, 10, 4), dt(2024, 10, 11), dt(2024, 10, 13)]
    assert all(d.day == 13 or d.isoweekday() == 5 for d in found)
    assert next_after("0 0 1 * MON", ms(2024, 5, 28)) == dt(2024, 6, 1)  # a Saturday, the 1st
    # Restricted on both sides, February 30th never comes but Mondays of February do.
    assert next_after("0 0 30 2 MON", ms(2024, 1, 1)) == dt(2024, 2, 5)


def test_one_restricted_day_field_is_the_only_one_that_counts() -> None:
    assert all(d.isoweekday() == 5 for d in matches("0 0 * * FRI", ms(2024, 9, 1), 6))
    assert all(d.day == 13 for d in matches("0 0 13 * *", ms(2024, 9, 1), 6))
    assert all(d.isoweekday() == 1 for d in matches("0 0 ? * MON", ms(2024, 9, 1), 6))
    assert all(d.day == 13 for d in matches("0 0 13 * ?", ms(2024, 9, 1), 6))
    assert all(d.isoweekday() == 5 for d in matches("0 0 */1 * FRI", ms(2024, 9, 1), 6))


def test_a_stepped_star_counts_as_restricted_as_in_cadence() -> None:
    schedule = CronSchedule.parse("0 0 */2 * MON")
    assert schedule.day_of_month_restricted and schedule.day_of_week_restricted
    found = matches("0 0 */2 * MON", ms(2024, 9, 1), 4)
    assert found == [dt(2024, 9, 2), dt(2024, 9, 3), dt(2024, 9, 5), dt(2024, 9, 7)]


def test_restricted_flags() -> None:
    assert not CronSchedule.parse("* * * * *").day_of_month_restricted
    assert not CronSchedule.parse("* * * * *").day_of_week_restricted
    assert CronSchedule.parse("* * 1-31 * *").day_of_month_restricted
    assert CronSchedule.parse("* * * * 0-6").day_of_week_restricted


def test_instants_before_1970() -> None:
    assert next_after("0 0 1 1 *", -1) == EPOCH
    assert next_after("0 12 * * *", ms(1969, 7, 20, 20, 17)) == dt(1969, 7, 21, 12)


def test_the_search_skips_ahead_instead_of_walking_minutes() -> None:
    schedules = [CronSchedule.parse(text) for text in
                 ("0 0 29 2 *", "59 23 31 12 *", "0 0 31 * *", "0 0 13 * FRI", "@yearly")]
    started = time.perf_counter()
    for schedule in schedules:
        moment = ms(2096, 3, 1)
        for _ in range(20):
            moment = schedule.next_after(moment)
    assert time.perf_counter() - started < 1.0  # about 100 matches, years apart


def brute_force_next(schedule: CronSchedule, epoch_ms: int, limit_minutes: int) -> int | None:
    """The next match found minute by minute, from the schedule's own value sets."""
    minute = epoch_ms // 60_000 + 1
    for index in range(minute, minute + limit_minutes):
        moment = at(index * 60_000)
        weekday = moment.isoweekday() % 7
        in_month = moment.day in schedule.days_of_month
        in_week = weekday in schedule.days_of_week
        day_ok = (in_month or in_week) if (schedule.day_of_month_restricted
                                            and schedule.day_of_week_restricted) \
            else (in_month and in_week)
        if (moment.minute in schedule.minutes and moment.hour in schedule.hours
                and moment.month in schedule.months and day_ok):
            return index * 60_000
    return None


@pytest.mark.parametrize("expression", [
    "*/7 * * * *", "0,30 */5 * * *", "15 3 * * 1-5", "0 0 1,15 * SUN", "45 23 28-31 * *",
    "0 12 * 2 SAT", "*/20 10-11 10-12 * 0,3", "0 6 ? * 7", "5/25 1/9 * 3-4 *",
])
def test_next_after_agrees_with_a_minute_by_minute_search(expression: str) -> None:
    schedule = CronSchedule.parse(expression)
    starts = [ms(2024, 2, 27, 22, 13, 7, 5), ms(2023, 12, 31, 23, 59, 59, 999),
              ms(2024, 3, 31, 23, 30), ms(2025, 2, 28, 11, 0)]
    for start, step in itertools.product(starts, range(3)):
        moment = start + step * 7_919_000
        window = 60 * 24 * 62
        expected = brute_force_next(schedule, moment, window)
        if expected is None:  # beyond the window searched: next_after must say so too
            assert schedule.next_after(moment) > moment + window * 60_000
        else:
            assert schedule.next_after(moment) == expected, (expression, at(moment))


# --- backoff --------------------------------------------------------------------------------


def test_backoff_is_whole_seconds_to_the_next_match_rounded_up() -> None:
    assert backoff_seconds("* * * * *", ms(2024, 5, 1, 12, 0)) == 60
    assert backoff_seconds("* * * * *", ms(2024, 5, 1, 12, 0, 59, 1)) == 1
    assert backoff_seconds("* * * * *", ms(2024, 5, 1, 12, 0, 59, 999)) == 1
    assert backoff_seconds("* * * * *", ms(2024, 5, 1, 12, 0, 30, 500)) == 30
    assert backoff_seconds("@hourly", ms(2024, 5, 1, 12, 30)) == 1800
    assert backoff_seconds("0 0 1 1 *", ms(2024, 12, 31)) == 86_400
    assert CronSchedule.parse("@hourly").backoff_seconds(ms(2024, 5, 1, 12, 30)) == 1800


def test_backoff_refuses_a_bad_expression() -> None:
    with pytest.raises(BadRequestError) as caught:
        backoff_seconds("every day", 0)
    assert caught.value.field == "cron_schedule"


# --- the parsed value -----------------------------------------------------------------------


def test_a_schedule_is_frozen_and_keeps_its_text() -> None:
    schedule = CronSchedule.parse("  */5 * * * *\t")
    assert schedule.text == "*/5 * * * *"
    assert str(schedule) == "*/5 * * * *"
    assert schedule == CronSchedule.parse("*/5 * * * *")
    with pytest.raises(dataclasses.FrozenInstanceError):
        schedule.minutes = (1,)  # type: ignore[misc]
    assert hash(schedule) == hash(CronSchedule.parse("*/5 * * * *"))


def test_utc_time_zone_prefixes_are_accepted() -> None:
    assert CronSchedule.parse("CRON_TZ=UTC 0 0 * * *").hours == (0,)
    assert CronSchedule.parse("TZ=Etc/UTC @daily").minutes == (0,)


@pytest.mark.parametrize("value", [1.5, True, "0"])
def test_next_after_takes_integer_milliseconds(value: object) -> None:
    with pytest.raises(TypeError):
        CronSchedule.parse("* * * * *").next_after(value)  # type: ignore[arg-type]


# --- errors name the expression and what is wrong -------------------------------------------


@pytest.mark.parametrize(("text", "problem"), [
    ("", "it is empty"),
    ("   ", "it is empty"),
    ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
    ("0 * * * * *", "expected 5 fields"),
    ("@every 1h", "unknown macro '@every'"),
    ("@often", "unknown macro '@often'; expected one of @yearly"),
    ("@daily *", "@daily takes nothing after it"),
    ("60 * * * *", "minute '60': 60 is out of range 0-59"),
    ("* 24 * * *", "hour '24': 24 is out of range 0-23"),
    ("* * 0 * *", "day-of-month '0': 0 is out of range 1-31"),
    ("* * 32 * *", "day-of-month '32': 32 is out of range 1-31"),
    ("* * * 0 *", "month '0': 0 is out of range 1-12"),
    ("* * * 13 *", "month '13': 13 is out of range 1-12"),
    ("* * * * 8", "day-of-week '8': 8 is out of range 0-7"),
    ("0-70 * * * *", "minute '0-70': 70 is out of range 0-59"),
    ("30-10 * * * *", "minute '30-10': range 30-10 runs backwards"),
    ("* * * * FRI-MON", "day-of-week 'FRI-MON': range FRI-MON runs backwards"),
    ("*/0 * * * *", "minute '*/0': step '0' must be a whole number >= 1"),
    ("*/x * * * *", "step 'x' must be a whole number >= 1"),
    ("*/ * * * *", "step '' must be a whole number >= 1"),
    ("1-5/-1 * * * *", "step '-1'"),
    ("1,,2 * * * *", "minute '1,,2' has an empty list item"),
    ("1, * * * *", "has an empty list item"),
    ("-5 * * * *", "minute '-5' is missing a value"),
    ("5- * * * *", "minute '5-' is missing a value"),
    ("a * * * *", "minute 'a': 'a' is not a number"),
    ("JAN * * * *", "minute 'JAN': 'JAN' is not a number"),
    ("* * * * JAN", "day-of-week 'JAN': 'JAN' is neither a number nor a weekday name"),
    ("* * * MON *", "month 'MON': 'MON' is neither a number nor a month name"),
    ("* * * JANUARY *", "'JANUARY' is neither a number nor a month name"),
    ("1.5 * * * *", "minute '1.5': '1.5' is not a number"),
    ("? * * * *", "minute '?': '?' is only allowed in the day fields"),
    ("CRON_TZ=Europe/Paris 0 0 * * *", "time zone 'Europe/Paris' is not supported"),
    ("TZ=UTC", "nothing follows the time zone"),
])
def test_invalid_expressions_are_refused_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        CronSchedule.parse(text)
    assert caught.value.field == "cron_schedule"
    message = str(caught.value)
    assert message.startswith(f"cron_schedule {text!r} is not a valid cron expression: ")
    assert problem in message


@pytest.mark.parametrize(("text", "problem"), [
    ("0 0 30 2 *", "day-of-month 30 never falls in month 2"),
    ("0 0 31 2 *", "never matches"),
    ("0 0 31 4,6,9,11 *", "day-of-month 31 never falls in month 4,6,9,11"),
    ("0 0 31 FEB-APR/2 *", "never matches"),
    ("0 0 30-31 feb ?", "never matches"),
])
def test_dates_that_never_come_are_refused(text: str, problem: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        CronSchedule.parse(text)
    assert caught.value.field == "cron_schedule"
    assert str(caught.value).startswith(f"cron_schedule {text!r} never matches: ")
    assert problem in str(caught.value)


@pytest.mark.parametrize("text", ["0 0 29 2 *", "0 0 29-31 2 *", "0 0 31 1-2 *",
                                  "0 0 30 2 MON"])
def test_dates_that_come_at_least_sometimes_are_accepted(text: str) -> None:
    schedule = CronSchedule.parse(text)
    assert schedule.next_after(ms(2024, 3, 1)) > ms(2024, 3, 1)


@pytest.mark.parametrize("value", [None, 5, ["* * * * *"]])
def test_a_schedule_must_be_text(value: object) -> None:
    with pytest.raises(BadRequestError, match="cron_schedule must be a string") as caught:
        CronSchedule.parse(value)
    assert caught.value.field == "cron_schedule"
