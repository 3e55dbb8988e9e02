"""Who a user is (names, UPN, mail, address): shared by every generator that mentions a person."""

from __future__ import annotations

from dataclasses import dataclass

from devstack.tenant import vocab
from devstack.tenant.layout import Layout
from devstack.tenant.rng import number


@dataclass(frozen=True, slots=True)
class Person:
    index: int
    id: str
    given: str
    surname: str
    display: str
    nickname: str
    upn: str
    mail: str
    guest: bool
    city: tuple[str, str, str, str, str, str, float, float, str, str, str]


def _ascii(text: str) -> str:
    return vocab.fold(text)


def person(layout: Layout, i: int) -> Person:
    """The i-th user of a layout (cached per layout: people are mentioned in most records)."""
    cache = layout.person_cache
    found: Person | None = cache.get(i)
    if found is None:
        if len(cache) >= 16384:
            cache.clear()
        found = cache[i] = _person(layout, i)
    return found


def _person(layout: Layout, i: int) -> Person:
    h = number(layout.seed, "person", i)
    given = vocab.FIRST_NAMES[h % len(vocab.FIRST_NAMES)]
    surname = vocab.LAST_NAMES[(h >> 8) % len(vocab.LAST_NAMES)]
    city = vocab.CITIES[(h >> 16) % len(vocab.CITIES)]
    base = _ascii(given) + _ascii(surname)[:1]
    if len(base) < 2:
        base = "user"
    nickname = base if i == 0 else f"{base}{i}"
    guest = layout.is_guest(i)
    if guest:
        company = vocab.COMPANIES[(h >> 24) % 5].lower().replace(" ", "")
        external = f"{_ascii(given).lower() or 'guest'}.{i}@{company}.com"
        upn = external.replace("@", "_") + "#EXT#@" + layout.default_domain
        mail = external
    else:
        upn = f"{nickname}@{layout.default_domain}"
        mail = upn
    return Person(i, layout.user_id(i), given, surname, f"{given} {surname}", nickname, upn, mail, guest, city)


def email(p: Person) -> dict[str, str]:
    """Graph's emailAddress complex type."""
    return {"name": p.display, "address": p.mail}
