"""Deterministic randomness addressed by (seed, kind, parent, index) and the timestamp format Graph uses.

Every record gets its own `random.Random` seeded from a hash of its address, so any record can be generated alone,
in any order, in any process, and always comes out byte-identical. Python's `hash()` is salted per process, so
addresses are hashed with blake2b.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import UTC, datetime, timedelta


def digest(*parts: object, size: int = 16) -> bytes:
    """Stable bytes for an address (parts are joined with a separator that cannot occur in ids)."""
    text = "\x1f".join(map(str, parts))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=size).digest()


def number(*parts: object) -> int:
    """A stable 64-bit number for an address."""
    return int.from_bytes(digest(*parts, size=8), "big")


def unit(*parts: object) -> float:
    """A stable float in (0, 1] for an address."""
    return (number(*parts) + 1) / 2.0**64


def rng(*parts: object) -> random.Random:
    return random.Random(number(*parts))


def _naive_utc(moment: datetime) -> datetime:
    if moment.tzinfo is not UTC and moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=None)


def iso(moment: datetime) -> str:
    """Graph's UTC timestamp form: seconds precision, `Z` suffix.

    Formatted by hand (the characters `isoformat(timespec="seconds")` writes, at half its cost): several per
    generated record."""
    if moment.tzinfo is not UTC and moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (  # noqa: UP031 - %-formatting is the fast path here
        moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second)


def iso_ms(moment: datetime) -> str:
    """Graph's fractional form used by logs and Teams (`2026-01-01T10:00:00.123Z`)."""
    return _naive_utc(moment).isoformat(timespec="milliseconds") + "Z"


def iso7(moment: datetime, digit: int = 0) -> str:
    """The 100-ns form Entra logs use (`2020-03-13T19:15:41.6195833Z`); `digit` is the 7th fractional digit."""
    return _naive_utc(moment).isoformat(timespec="microseconds") + f"{digit % 10}Z"


def local7(moment: datetime) -> str:
    """dateTimeTimeZone.dateTime as Outlook writes it (7 fractional digits, no offset)."""
    return _naive_utc(moment).isoformat(timespec="seconds") + ".0000000"


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def spread(start: datetime, end: datetime, index: int, count: int, jitter: float) -> datetime:
    """The index-th of `count` moments spread evenly over [start, end), monotonic in index (jitter in [0, 1))."""
    span = (end - start).total_seconds()
    step = span / max(count, 1)
    return start + timedelta(seconds=step * (index + jitter * 0.9))


def random_guid(r: random.Random) -> str:
    """A v4 GUID drawn from a record's own generator (ids nobody looks up: request, correlation, key ids)."""
    return str(uuid.UUID(int=r.getrandbits(128), version=4))
