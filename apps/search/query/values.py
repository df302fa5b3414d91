"""Qualifier values: ranges and units (sizes, durations, dates, ages, ratios, confidences).

docs/query-language.md#range-values
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any


class ValueProblem(ValueError):
    """A value (or part of one, at `offset` within it) that a qualifier cannot read."""

    def __init__(self, message: str, *, token: str, offset: int, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.token = token
        self.offset = offset
        self.hint = hint


@dataclass(frozen=True)
class Interval:
    """A closed, half-open or unbounded range of column values (None = unbounded)."""

    lo: Any = None
    lo_incl: bool = True
    hi: Any = None
    hi_incl: bool = True

    def contains(self, value: Any) -> bool:
        """Python evaluation, for tests and oracles."""
        if value is None:
            return False
        if self.lo is not None and (value < self.lo or (value == self.lo and not self.lo_incl)):
            return False
        return not (self.hi is not None and (value > self.hi or (value == self.hi and not self.hi_incl)))


ANY = "any"
NONE = "none"
RangeItem = Interval | str
Converter = Callable[[str], Interval]


@dataclass(frozen=True)
class RangeList:
    """OR of intervals and the words `any` (set, non-zero) / `none` (unset or zero)."""

    items: tuple[RangeItem, ...]

    def contains(self, value: Any) -> bool:
        """Python evaluation, for tests and oracles."""
        for item in self.items:
            if item == ANY and value not in (None, 0):
                return True
            if item == NONE and value in (None, 0):
                return True
            if isinstance(item, Interval) and item.contains(value):
                return True
        return False


def _problem(text: str, offset: int, what: str, hint: str) -> ValueProblem:
    return ValueProblem(f"{text!r} is not {what}.", token=text, offset=offset, hint=hint)


def parse_range(text: str, convert: Converter, *, what: str, hint: str) -> RangeList:
    """`N`, `>N`, `>=N`, `<N`, `<=N`, `N..M`, `N..`, `..M`, `a,b,c`, `any`, `none`."""
    items: list[RangeItem] = []
    offset = 0
    for piece in text.split(","):
        items.append(_range_item(piece, offset, convert, what, hint))
        offset += len(piece) + 1
    return RangeList(tuple(items))


def _one(piece: str, offset: int, convert: Converter, what: str, hint: str) -> Interval:
    if not piece.strip():
        raise _problem(piece, offset, what, hint)
    try:
        return convert(piece.strip())
    except (ValueError, ArithmeticError) as exc:
        raise _problem(piece, offset, what, hint) from exc


def _range_item(piece: str, offset: int, convert: Converter, what: str, hint: str) -> RangeItem:
    word = piece.strip().lower()
    if word in (ANY, NONE):
        return word
    for op in (">=", "<=", ">", "<"):
        if piece.startswith(op):
            exact = _one(piece[len(op) :], offset + len(op), convert, what, hint)
            if op == ">":
                return Interval(exact.hi, not exact.hi_incl, None)
            if op == ">=":
                return Interval(exact.lo, exact.lo_incl, None)
            if op == "<":
                return Interval(None, True, exact.lo, not exact.lo_incl)
            return Interval(None, True, exact.hi, exact.hi_incl)
    if ".." in piece:
        left, right = piece.split("..", 1)
        if not left and not right:
            raise _problem(piece, offset, what, hint)
        lo = _one(left, offset, convert, what, hint) if left else None
        hi = _one(right, offset + len(left) + 2, convert, what, hint) if right else None
        return Interval(
            lo.lo if lo else None,
            lo.lo_incl if lo else True,
            hi.hi if hi else None,
            hi.hi_incl if hi else True,
        )
    return _one(piece, offset, convert, what, hint)


def _decimal(text: str) -> Decimal:
    if not re.fullmatch(r"\d+(\.\d+)?|\.\d+", text):
        raise ValueError(text)
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(text) from exc


def exact(value: Any) -> Interval:
    """The one-value interval."""
    return Interval(value, True, value, True)


def conv_int(text: str) -> Interval:
    """A non-negative integer."""
    if not text.isdigit() or not text.isascii() or len(text) > 18:
        raise ValueError(text)
    return exact(int(text))


def conv_scaled(scale: int) -> Converter:
    """A decimal number stored × scale as an integer (mpixels → pixels, fps → fps_milli)."""

    def convert(text: str) -> Interval:
        value = _decimal(text) * scale
        return exact(int(value) if value == value.to_integral_value() else value)

    return convert


_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2}
_SIZE_UNITS |= {"mib": 1024**2, "g": 1024**3, "gb": 1024**3, "gib": 1024**3}


def conv_size(text: str) -> Interval:
    """Bytes: `500kb`, `2.5mb`, `1g` (1024-based) or a plain byte count."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([a-z]*)", text.lower())
    if not match or match.group(2) not in _SIZE_UNITS:
        raise ValueError(text)
    return exact(int(_decimal(match.group(1)) * _SIZE_UNITS[match.group(2)]))


_TIME_UNITS = {"ms": Decimal(1), "s": Decimal(1000), "m": Decimal(60_000), "min": Decimal(60_000)}
_TIME_UNITS |= {"h": Decimal(3_600_000)}


def conv_duration(text: str) -> Interval:
    """Milliseconds from `90` (seconds), `1:30`, `1:02:03`, `5s`, `2m`, `1h`, `250ms`."""
    text = text.lower()
    if ":" in text:
        parts = text.split(":")
        if len(parts) > 3 or not all(parts):
            raise ValueError(text)
        seconds = _decimal(parts[-1])
        for multiplier, part in zip((60, 3600), reversed(parts[:-1]), strict=False):
            if not part.isdigit():
                raise ValueError(text)
            seconds += int(part) * multiplier
        return exact(int(seconds * 1000))
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|min|m|h)?", text)
    if not match:
        raise ValueError(text)
    unit = _TIME_UNITS[match.group(2) or "s"]
    return exact(int(_decimal(match.group(1)) * unit))


_AGE_UNITS = {"s": 1, "min": 60, "h": 3600, "d": 86_400, "w": 604_800, "mo": 2_592_000, "y": 31_536_000}


def conv_age(text: str) -> Interval:
    """Seconds from `30min`, `12h`, `3d`, `2w`, `6mo`, `1y`."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(s|min|h|d|w|mo|y)", text.lower())
    if not match:
        raise ValueError(text)
    return exact(int(_decimal(match.group(1)) * _AGE_UNITS[match.group(2)]))


def conv_date(text: str) -> Interval:
    """`2024`, `2024-05` or `2024-05-01` as the half-open UTC interval it names."""
    match = re.fullmatch(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?", text)
    if not match:
        raise ValueError(text)
    year, month, day = int(match.group(1)), match.group(2), match.group(3)
    if year < 1:
        raise ValueError(text)
    if month is None:
        start = datetime(year, 1, 1, tzinfo=UTC)
        end = datetime(year + 1, 1, 1, tzinfo=UTC) if year < 9999 else None
    elif day is None:
        start = datetime(year, int(month), 1, tzinfo=UTC)
        end = datetime(year + (int(month) == 12), int(month) % 12 + 1, 1, tzinfo=UTC) if year < 9999 else None
    else:
        from datetime import timedelta

        start = datetime(year, int(month), int(day), tzinfo=UTC)
        end = start + timedelta(days=1) if (year, int(month), int(day)) != (9999, 12, 31) else None
    return Interval(start, True, end, False)


RATIO_TOLERANCE = Decimal("0.005")


def conv_ratio(text: str) -> Interval:
    """Width/height as `16:9` or `1.778`, ±0.5 %, in ratio_milli units."""
    if ":" in text:
        width, height = text.split(":", 1)
        value = _decimal(width) / _decimal(height)
    else:
        value = _decimal(text)
    milli = value * 1000
    return Interval(milli * (1 - RATIO_TOLERANCE), True, milli * (1 + RATIO_TOLERANCE), True)


def conv_confidence(text: str) -> Interval:
    """`0.35` or `35%` as 1/10000 units."""
    value = _decimal(text[:-1]) / 100 if text.endswith("%") else _decimal(text)
    if value > 1:
        raise ValueError(text)
    return exact(int((value * 10_000).to_integral_value()))
