"""Cron schedules (``cron_schedule`` of a workflow): parsing and the next matching minute, in UTC.

Standard five fields, ``minute hour day-of-month month day-of-week``:

* ``*`` (every value), a number, a range ``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n``
  (``a`` up to the field's maximum), and lists of those ``a,b-c,*/n``;
* month names ``JAN``-``DEC`` and weekday names ``SUN``-``SAT``, in any case, wherever a number
  of that field goes (``MON-FRI``, ``JAN-JUN/2``); day-of-week ``0`` and ``7`` are both Sunday;
* ``?`` means ``*`` in the two day fields (as Cadence's scheduler accepts);
* the macros ``@yearly`` (``@annually``), ``@monthly``, ``@weekly``, ``@daily`` (``@midnight``)
  and ``@hourly``.

Days follow Vixie cron's rule: when both day-of-month and day-of-week are restricted, a day
matches when either does (``0 0 1 * MON``: the 1st of each month and every Monday); when one of
them is ``*`` only the other one counts. A field is unrestricted when it is ``*`` or ``?``
(``*/1`` too); like Cadence's scheduler (robfig/cron), ``*/2`` counts as restricted.

Everything here is pure: callers pass the instant in, as epoch milliseconds. Times are UTC; a
``CRON_TZ=``/``TZ=`` prefix is accepted only for UTC. A schedule that can never match (February
30th) is refused when parsed.
"""

from __future__ import annotations

import calendar
import functools
import math
from bisect import bisect_left
from dataclasses import dataclass
from datetime import date

from ..error import BadRequestError

__all__ = ["MACROS", "CronSchedule", "backoff_seconds"]

#: The macros and the five fields each stands for.
MACROS: dict[str, str] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_MONTHS = {name.upper(): index for index, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}
_UTC_NAMES = {"UTC", "ETC/UTC", "Z", "GMT", "ETC/GMT", "UCT", "ZULU"}

_MINUTE_MS = 60_000
_DAY_MINUTES = 1440
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
#: Longest month of each month number; February counts its leap day.
_LONGEST_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
#: How far ahead a match is looked for. Any schedule the parser accepts matches within 8 years
#: (February 29th skips at most 2100-style years); this is a backstop, never reached.
_SEARCH_YEARS = 400


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day-of-month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    # 7 is Sunday as well; folded onto 0 once parsed.
    _Field("day-of-week", 0, 7, _WEEKDAYS),
)


class _Invalid(Exception):
    """What is wrong with an expression; :meth:`CronSchedule.parse` adds the expression."""


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron expression: the allowed values of each field, sorted.

    Build one with :meth:`parse`; :meth:`next_after` gives the next matching minute.
    """

    #: The expression as given (stripped of surrounding blanks).
    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days_of_month: tuple[int, ...]
    months: tuple[int, ...]
    #: 0 is Sunday, 6 Saturday.
    days_of_week: tuple[int, ...]
    #: False when the field is ``*``: the Vixie day rule needs to know.
    day_of_month_restricted: bool
    day_of_week_restricted: bool

    @classmethod
    def parse(cls, text: object) -> CronSchedule:
        """The schedule ``text`` describes; BadRequestError (field ``cron_schedule``) naming
        what is wrong otherwise."""
        if not isinstance(text, str):
            raise BadRequestError(
                f"cron_schedule must be a string, not {type(text).__name__}",
                field="cron_schedule",
            )
        return _parse(text)

    def next_after(self, epoch_ms: int) -> int:
        """Epoch milliseconds of the first whole minute strictly after ``epoch_ms`` that matches.

        Skips whole months, days and hours that cannot match, so a yearly schedule costs a few
        dozen steps, not half a million minutes.
        """
        if isinstance(epoch_ms, bool) or not isinstance(epoch_ms, int):
            raise TypeError(f"epoch_ms must be an int, not {type(epoch_ms).__name__}")
        minute_index = epoch_ms // _MINUTE_MS + 1
        days, rest = divmod(minute_index, _DAY_MINUTES)
        hour, minute = divmod(rest, 60)
        try:
            start = date.fromordinal(_EPOCH_ORDINAL + days)
        except (ValueError, OverflowError) as error:
            raise BadRequestError(
                f"cron_schedule {self.text!r} cannot be scheduled after {epoch_ms} ms: the "
                "time is out of range", field="cron_schedule",
            ) from error
        year, month, day = start.year, start.month, start.day
        last_year = min(year + _SEARCH_YEARS, date.max.year)
        while year <= last_year:
            if month not in self.months:
                following = _next_value(self.months, month)
                if following is None:
                    year, month = year + 1, self.months[0]
                else:
                    month = following
                day, hour, minute = 1, 0, 0
                continue
            if day > calendar.monthrange(year, month)[1]:
                year, month = (year + 1, 1) if month == 12 else (year, month + 1)
                day, hour, minute = 1, 0, 0
                continue
            if not self._day_matches(year, month, day):
                day, hour, minute = day + 1, 0, 0
                continue
            next_hour = _next_value(self.hours, hour)
            if next_hour is None:
                day, hour, minute = day + 1, 0, 0
                continue
            if next_hour != hour:
                hour, minute = next_hour, 0
            next_minute = _next_value(self.minutes, minute)
            if next_minute is None:
                hour, minute = hour + 1, 0
                if hour == 24:
                    day, hour = day + 1, 0
                continue
            ordinal = date(year, month, day).toordinal() - _EPOCH_ORDINAL
            return ((ordinal * _DAY_MINUTES) + hour * 60 + next_minute) * _MINUTE_MS
        raise BadRequestError(
            f"cron_schedule {self.text!r} has no match after {epoch_ms} ms",
            field="cron_schedule",
        )

    def backoff_seconds(self, now_ms: int) -> int:
        """Whole seconds from ``now_ms`` to :meth:`next_after` it, rounded up: at least 1."""
        return math.ceil((self.next_after(now_ms) - now_ms) / 1000)

    def _day_matches(self, year: int, month: int, day: int) -> bool:
        in_month = day in self.days_of_month
        # date.weekday() counts from Monday = 0; cron from Sunday = 0.
        in_week = (date(year, month, day).weekday() + 1) % 7 in self.days_of_week
        if self.day_of_month_restricted and self.day_of_week_restricted:
            return in_month or in_week
        return in_month and in_week

    def __str__(self) -> str:
        return self.text


def backoff_seconds(text: str, now_ms: int) -> int:
    """Whole seconds from ``now_ms`` until the next minute ``text`` matches (rounded up, >= 1).

    The next match is strictly after ``now_ms``: on a matching minute exactly, it is the one
    after. BadRequestError for an invalid expression.
    """
    return CronSchedule.parse(text).backoff_seconds(now_ms)


def _next_value(values: tuple[int, ...], at_least: int) -> int | None:
    index = bisect_left(values, at_least)
    return values[index] if index < len(values) else None


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> CronSchedule:
    stripped = text.strip()
    try:
        fields = _fields_of(stripped)
        values: list[tuple[int, ...]] = []
        restricted: list[bool] = []
        for spec, raw in zip(_FIELDS, fields, strict=True):
            allowed, is_restricted = _parse_field(spec, raw)
            values.append(allowed)
            restricted.append(is_restricted)
    except _Invalid as problem:
        raise BadRequestError(
            f"cron_schedule {text!r} is not a valid cron expression: {problem}",
            field="cron_schedule",
        ) from None
    weekdays = tuple(sorted({value % 7 for value in values[4]}))
    schedule = CronSchedule(
        text=stripped,
        minutes=values[0],
        hours=values[1],
        days_of_month=values[2],
        months=values[3],
        days_of_week=weekdays,
        day_of_month_restricted=restricted[2],
        day_of_week_restricted=restricted[4],
    )
    if schedule.day_of_month_restricted and not schedule.day_of_week_restricted and not any(
        day <= _LONGEST_MONTH[month] for month in schedule.months
        for day in schedule.days_of_month
    ):
        raise BadRequestError(
            f"cron_schedule {text!r} never matches: day-of-month {fields[2]} never falls in "
            f"month {fields[3]}",
            field="cron_schedule",
        )
    return schedule


def _fields_of(text: str) -> list[str]:
    if not text:
        raise _Invalid("it is empty")
    parts = text.split()
    if "=" in parts[0] and parts[0].split("=", 1)[0].upper() in {"CRON_TZ", "TZ"}:
        zone = parts[0].split("=", 1)[1]
        if zone.upper() not in _UTC_NAMES:
            raise _Invalid(f"time zone {zone!r} is not supported: schedules are in UTC")
        parts = parts[1:]
        if not parts:
            raise _Invalid("nothing follows the time zone")
    if parts[0].startswith("@"):
        macro = parts[0].lower()
        if macro not in MACROS:
            raise _Invalid(
                f"unknown macro {parts[0]!r}; expected one of {', '.join(MACROS)}"
            )
        if len(parts) > 1:
            raise _Invalid(f"{parts[0]} takes nothing after it")
        return MACROS[macro].split()
    if len(parts) != len(_FIELDS):
        raise _Invalid(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    return parts


def _parse_field(spec: _Field, raw: str) -> tuple[tuple[int, ...], bool]:
    """The sorted values ``raw`` allows, and whether it restricts the field (is not ``*``)."""
    allowed: set[int] = set()
    restricted = True
    for item in raw.split(","):
        if not item:
            raise _Invalid(f"{spec.name} {raw!r} has an empty list item")
        values, is_star = _parse_item(spec, item)
        allowed.update(values)
        if is_star:
            restricted = False
    return tuple(sorted(allowed)), restricted


def _parse_item(spec: _Field, item: str) -> tuple[range, bool]:
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdecimal() or int(step_text) < 1:
            raise _Invalid(f"{spec.name} {item!r}: step {step_text!r} must be a whole number >= 1")
        step = int(step_text)
    if base in {"*", "?"}:
        if base == "?" and spec.name not in {"day-of-month", "day-of-week"}:
            raise _Invalid(f"{spec.name} {item!r}: '?' is only allowed in the day fields")
        return range(spec.low, spec.high + 1, step), step == 1
    low_text, dash, high_text = base.partition("-")
    low = _value(spec, low_text, item)
    if dash:
        high = _value(spec, high_text, item)
        if low > high:
            raise _Invalid(
                f"{spec.name} {item!r}: range {low_text}-{high_text} runs backwards"
            )
    else:
        high = spec.high if slash else low  # 'a/n' runs to the field's maximum
    return range(low, high + 1, step), False


def _value(spec: _Field, text: str, item: str) -> int:
    if not text:
        raise _Invalid(f"{spec.name} {item!r} is missing a value")
    if text.isdecimal() and text.isascii():
        value = int(text)
    elif spec.names is not None and text.upper() in spec.names:
        return spec.names[text.upper()]
    elif spec.names is not None:
        kind = "month" if spec.name == "month" else "weekday"
        raise _Invalid(
            f"{spec.name} {item!r}: {text!r} is neither a number nor a {kind} name"
        )
    else:
        raise _Invalid(f"{spec.name} {item!r}: {text!r} is not a number")
    if not spec.low <= value <= spec.high:
        raise _Invalid(
            f"{spec.name} {item!r}: {value} is out of range {spec.low}-{spec.high}"
        )
    return value
