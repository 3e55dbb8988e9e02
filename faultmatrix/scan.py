"""Secret and token scanning: pure. A leak is an ACTUAL credential value found somewhere it must never be.

Needles are derived from the real values (the client secrets, the certificate's private key, every access token
Entra issued), not from patterns alone, so a token that was reformatted, truncated to its signature or embedded in
a URL is still found. A JWT-shaped pattern is scanned too, to catch tokens the needle list could not know about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# Header.payload.signature of an RS256 JWT: base64url segments, the header always starting with '{"' -> eyJ.
JWT = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
MIN_NEEDLE = 16  # shorter fragments match by chance


@dataclass(frozen=True, slots=True)
class Leak:
    where: str  # e.g. "blob graph/.../_manifest.json", "log", "http 202 POST /api/syncs"
    secret: str  # the NAME of what leaked (never the value)
    offset: int


@dataclass(slots=True)
class SecretSet:
    """Named credential values; `needles()` are the byte strings whose presence anywhere is a leak."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, value: str | None) -> None:
        if value:
            self.values[name] = value

    def add_token(self, value: str) -> None:
        self.add(f"access token #{sum(1 for k in self.values if k.startswith('access token'))}", value)

    def needles(self) -> dict[bytes, str]:
        found: dict[bytes, str] = {}
        for name, value in self.values.items():
            for part in _fragments(value):
                if len(part) >= MIN_NEEDLE:
                    found.setdefault(part.encode("utf-8"), name)
        return found


def _fragments(value: str) -> Iterable[str]:
    """The value and the parts that identify it on their own: a JWT's signature, a PEM key's base64 lines."""
    yield value.strip()
    if value.count(".") == 2 and value.startswith("eyJ"):
        yield value.rsplit(".", 1)[1]
    if "-----BEGIN" in value:
        in_key = False
        for line in value.splitlines():
            if line.startswith("-----BEGIN") and "PRIVATE KEY" in line:
                in_key = True
            elif line.startswith("-----END"):
                in_key = False
            elif in_key and line.strip():
                yield line.strip()


class Scanner:
    """Scans many documents against one secret set; keeps every leak with where it was found."""

    def __init__(self, secrets: SecretSet) -> None:
        self._needles = secrets.needles()
        self.leaks: list[Leak] = []
        self.scanned_bytes = 0
        self.documents = 0

    def scan(self, where: str, data: bytes | str) -> list[Leak]:
        raw = data.encode("utf-8", "replace") if isinstance(data, str) else data
        self.scanned_bytes += len(raw)
        self.documents += 1
        found = [Leak(where, name, raw.find(needle)) for needle, name in self._needles.items() if needle in raw]
        found += [Leak(where, "a JWT-shaped token", m.start()) for m in JWT.finditer(raw)]
        self.leaks.extend(found)
        return found
