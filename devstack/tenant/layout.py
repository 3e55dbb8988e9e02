"""The shape of a demo tenant as arithmetic: who exists, who belongs where, how many of what each parent holds.

Pure and cheap: per-user facts live in two compact arrays (O(users) bytes); everything else (group windows, chat
membership, folder of a message, drive tree) is computed from indices, so counts are O(1) and records can be
generated in any order. Nothing here builds a record; the generators do that from these answers.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
from array import array
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from devstack.tenant import ids
from devstack.tenant.rng import number, rng, unit
from devstack.tenant.sizes import TenantSizes

DEFAULT_ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)

MailboxState = Literal["ok", "no_mailbox", "access_denied"]
MEMBER, GUEST, UNLICENSED, ACCESS_DENIED, NO_ONEDRIVE = 0, 1, 2, 3, 4

# Top-level mail folders: (wellKnownName, displayName, messages per block of 20). The pattern spreads every
# mailbox's messages over folders arithmetically, so a folder's k-th message is found in O(1).
MAIL_FOLDERS: tuple[tuple[str, str, int], ...] = (
    ("inbox", "Inbox", 11),
    ("drafts", "Drafts", 1),
    ("sentitems", "Sent Items", 4),
    ("deleteditems", "Deleted Items", 1),
    ("junkemail", "Junk Email", 1),
    ("archive", "Archive", 1),
    ("outbox", "Outbox", 0),
    ("conversationhistory", "Conversation History", 0),
    ("", "Projets 2026 — Équipe", 1),
)
_BLOCK = sum(n for _, _, n in MAIL_FOLDERS)
# Child folders of the mailboxes that have a hierarchy: (parent folder index, displayName). Folder 9 sits in the
# Inbox and holds folder 10 (a grandchild of the Inbox); folder 11 sits in the Archive.
CHILD_MAIL_FOLDERS: tuple[tuple[int, str], ...] = ((0, "Clients"), (9, "Contrats 2025"), (5, "Newsletters"))
# Messages per block of 20 in those mailboxes: the children take their share from the Inbox.
NESTED_SHARES: tuple[int, ...] = (7, 1, 4, 1, 1, 1, 0, 0, 1, 2, 1, 1)
assert sum(NESTED_SHARES) == _BLOCK and len(NESTED_SHARES) == len(MAIL_FOLDERS) + len(CHILD_MAIL_FOLDERS)

Pattern = tuple[tuple[int, ...], tuple[tuple[int, ...], ...]]


def _build_pattern(shares: tuple[int, ...], early_from: int | None = None) -> Pattern:
    # Interleave folders so every block mixes them (inbox-heavy like a real mailbox). Folders from `early_from` on
    # lead the block, so even a mailbox of a few messages has some in each child folder.
    slots: list[tuple[float, int]] = []
    for folder, n in enumerate(shares):
        lead = 0.05 if early_from is not None and folder >= early_from else 0.5
        for k in range(n):
            slots.append(((k + lead) / n, folder))
    slots.sort()
    pattern = tuple(folder for _, folder in slots)
    positions = tuple(tuple(r for r, f in enumerate(pattern) if f == folder) for folder in range(len(shares)))
    return pattern, positions


FLAT: Pattern = _build_pattern(tuple(n for _, _, n in MAIL_FOLDERS))
NESTED: Pattern = _build_pattern(NESTED_SHARES, early_from=len(MAIL_FOLDERS))
PATTERN, FOLDER_POSITIONS = FLAT
DEFAULT_CONTACT_FOLDER = 0


@dataclass(frozen=True, slots=True)
class ChatRef:
    """A chat by its structural address: kind ("oneOnOne" | "group" | "meeting") and index or user pair."""

    id: str
    chat_type: Literal["oneOnOne", "group", "meeting"]
    index: int
    members: tuple[int, ...]


class Layout:
    """Structural answers for one (seed, sizes, anchor)."""

    def __init__(self, seed: int, sizes: TenantSizes, anchor: datetime = DEFAULT_ANCHOR) -> None:
        if anchor.tzinfo is None:
            raise ValueError("anchor must be timezone-aware (UTC), e.g. datetime(2026, 1, 1, tzinfo=UTC)")
        self.seed = seed
        self.sizes = sizes
        self.anchor = anchor.astimezone(UTC).replace(microsecond=0)
        self.tenant_id = ids.guid(seed, "tenant", 0)
        slug = f"{number(seed, 'domain') % 100000:05d}"
        self.default_domain = f"contoso{slug}.onmicrosoft.com"
        self.display_name = "Contoso Demo"
        self.categories = self._assign_categories()
        self.mailbox_counts = self._assign_mailboxes()
        self._nest_stride = max(1, sizes.users // sizes.mailboxes_with_child_folders) \
            if sizes.mailboxes_with_child_folders else 0
        self._nest_offset = number(seed, "mfnest") % self._nest_stride if self._nest_stride else 0
        # ids are hashed on every mention (members, senders, attendees): keep the recent ones (bounded memory)
        self.user_id = functools.lru_cache(maxsize=32768)(self._user_id)  # type: ignore[method-assign]
        self.group_id = functools.lru_cache(maxsize=8192)(self._group_id)  # type: ignore[method-assign]
        # decoding an id re-derives it (two hashes and a UUID parse); every Outlook request decodes its user's id
        self.user_index = functools.lru_cache(maxsize=32768)(self._user_index)  # type: ignore[method-assign]
        self.group_index = functools.lru_cache(maxsize=8192)(self._group_index)  # type: ignore[method-assign]
        self.person_cache: dict[int, Any] = {}  # filled by people.person

    # --- users ---------------------------------------------------------------------------------------------
    def _assign_categories(self) -> bytearray:
        n = self.sizes.users
        cats = bytearray(n)
        order = list(range(1, n))  # user 0 is the administrator: always a licensed member
        rng(self.seed, "categories").shuffle(order)
        take = iter(order)

        def mark(count: int, cat: int) -> None:
            for _ in range(count):
                i = next(take, None)
                if i is None:
                    return
                cats[i] = cat

        mark(self.sizes.guests, GUEST)
        mark(max(1, n * 3 // 100), UNLICENSED)
        mark(1 if n < 1000 else 2, ACCESS_DENIED)
        mark(max(1, n // 100), NO_ONEDRIVE)
        return cats

    def _assign_mailboxes(self) -> array[int]:
        n = self.sizes.users
        sigma = float(self.sizes.mailbox_skew)
        weights = [0.0] * n
        for i in range(n):
            if self.categories[i] in (GUEST, UNLICENSED):
                continue
            # Box-Muller from two stable uniforms -> log-normal weight
            z = math.sqrt(-2.0 * math.log(unit(self.seed, "mbx-a", i))) * math.cos(
                2 * math.pi * unit(self.seed, "mbx-b", i)
            )
            weights[i] = math.exp(sigma * z)
        total_weight = sum(weights)
        counts = array("I", bytes(4 * n))
        if total_weight <= 0:
            return counts
        budget = self.sizes.total_messages
        shares = [budget * w / total_weight for w in weights]
        for i, share in enumerate(shares):
            counts[i] = int(share)
        rest = budget - sum(counts)
        by_remainder = sorted(range(n), key=lambda i: (-(shares[i] - int(shares[i])), i))
        for i in by_remainder[:rest]:
            if weights[i] > 0:
                counts[i] += 1
        return counts

    def _user_id(self, i: int) -> str:
        return ids.guid(self.seed, "user", i)

    def user_id(self, i: int) -> str:
        return self._user_id(i)

    def user_index(self, user_id: str) -> int | None:
        return self._user_index(user_id)

    def _user_index(self, user_id: str) -> int | None:
        i = ids.guid_index(self.seed, "user", user_id)
        return i if i is not None and i < self.sizes.users else None

    def is_guest(self, i: int) -> bool:
        return self.categories[i] == GUEST

    def mailbox_state(self, i: int) -> MailboxState:
        cat = self.categories[i]
        if cat in (GUEST, UNLICENSED):
            return "no_mailbox"
        return "access_denied" if cat == ACCESS_DENIED else "ok"

    def has_onedrive(self, i: int) -> bool:
        return self.categories[i] not in (GUEST, UNLICENSED, NO_ONEDRIVE)

    def is_licensed(self, i: int) -> bool:
        return self.categories[i] not in (GUEST, UNLICENSED)

    # --- mail ---------------------------------------------------------------------------------------------------
    def messages_in(self, user: int) -> int:
        return self.mailbox_counts[user]

    def has_child_folders(self, user: int) -> bool:
        """Every `stride`-th mailbox (a seeded offset) has the child folders of CHILD_MAIL_FOLDERS."""
        stride = self._nest_stride
        if not stride or user < self._nest_offset:
            return False
        k, r = divmod(user - self._nest_offset, stride)
        return r == 0 and k < self.sizes.mailboxes_with_child_folders

    def mail_folder_total(self, user: int | None) -> int:
        """How many generated folders the mailbox has (created users get the top-level ones)."""
        nested = user is not None and self.has_child_folders(user)
        return len(MAIL_FOLDERS) + (len(CHILD_MAIL_FOLDERS) if nested else 0)

    @staticmethod
    def mail_folder_parent(folder: int) -> int | None:
        """The parent folder's index, None for a top-level folder (a child of the mailbox root)."""
        return None if folder < len(MAIL_FOLDERS) else CHILD_MAIL_FOLDERS[folder - len(MAIL_FOLDERS)][0]

    def mail_folder_children(self, user: int | None, folder: int) -> int:
        return sum(1 for f in range(len(MAIL_FOLDERS), self.mail_folder_total(user))
                   if self.mail_folder_parent(f) == folder)

    def _pattern(self, user: int) -> Pattern:
        return NESTED if self.has_child_folders(user) else FLAT

    def folder_of(self, user: int, index: int) -> int:
        return self._pattern(user)[0][index % _BLOCK]

    def folder_count(self, user: int, folder: int) -> int:
        total = self.mailbox_counts[user]
        full, rem = divmod(total, _BLOCK)
        all_positions = self._pattern(user)[1]
        if folder >= len(all_positions):
            return 0
        positions = all_positions[folder]
        return full * len(positions) + sum(1 for r in positions if r < rem)

    def folder_to_global(self, user: int, folder: int, k: int) -> int:
        positions = self._pattern(user)[1][folder]
        block, pos = divmod(k, len(positions))
        return block * _BLOCK + positions[pos]

    def global_to_folder(self, user: int, index: int) -> tuple[int, int]:
        pattern, all_positions = self._pattern(user)
        block, r = divmod(index, _BLOCK)
        folder = pattern[r]
        positions = all_positions[folder]
        return folder, block * len(positions) + positions.index(r)

    def contact_folder_count(self) -> int:
        return 1 + self.sizes.contact_folders_per_user

    def contacts_in(self, user: int, folder: int) -> int:
        base = self.sizes.contacts_per_user
        return base if folder == DEFAULT_CONTACT_FOLDER else (base + 1) // 2

    # --- groups ------------------------------------------------------------------------------------------------
    def _group_id(self, g: int) -> str:
        return ids.guid(self.seed, "group", g)

    def group_id(self, g: int) -> str:
        return self._group_id(g)

    def group_index(self, group_id: str) -> int | None:
        return self._group_index(group_id)

    def _group_index(self, group_id: str) -> int | None:
        g = ids.guid_index(self.seed, "group", group_id)
        return g if g is not None and g < self.sizes.groups else None

    def is_team(self, g: int) -> bool:
        return g < self.sizes.teams

    def is_all_company(self, g: int) -> bool:
        """The first group after the teams holds every user (a big member list, as real tenants have)."""
        return g == self.sizes.teams

    def group_flavour(self, g: int) -> Literal["unified", "security", "mail_security", "distribution"]:
        if self.is_team(g) or self.is_all_company(g):
            return "unified"
        r = number(self.seed, "gflavour", g) % 20
        if r < 10:
            return "unified"
        if r < 17:
            return "security"
        return "mail_security" if r < 19 else "distribution"

    def group_window(self, g: int) -> tuple[int, int]:
        """(first user index, member count) of the group's users: members are consecutive indices mod users."""
        n = self.sizes.users
        if self.is_all_company(g):
            return 0, n
        size = round(self.sizes.members_per_group * (0.5 + unit(self.seed, "gsize", g)))
        size = max(1, min(n, size))
        return number(self.seed, "gstart", g) % n, size

    def nested_group(self, g: int) -> int | None:
        if self.is_team(g) or self.is_all_company(g) or g + 1 >= self.sizes.groups or number(self.seed, "gnest", g) % 4:
            return None
        return g + 1

    def owner_count(self, g: int) -> int:
        _, size = self.group_window(g)
        if self.group_flavour(g) == "unified":
            return min(size, 1 + number(self.seed, "gowners", g) % 2)
        return min(size, number(self.seed, "gowners", g) % 2)

    def groups_of_user(self, u: int) -> list[int]:
        n = self.sizes.users
        found = []
        for g in range(self.sizes.groups):
            start, size = self.group_window(g)
            if (u - start) % n < size:
                found.append(g)
        return found

    # --- teams -------------------------------------------------------------------------------------------------
    def channel_count(self, team: int) -> int:
        return max(1, self.sizes.channels_per_team)

    def chat(self, chat_id: str) -> ChatRef | None:
        n = self.sizes.users
        if chat_id.endswith("@unq.gbl.spaces") and chat_id.startswith("19:"):
            pair = chat_id[3:-15].split("_")
            if len(pair) != 2:
                return None
            a, b = self.user_index(pair[0]), self.user_index(pair[1])
            if a is None or b is None or a >= b:
                return None
            k = self.sizes.one_on_one_chats_per_user
            if not (0 < (b - a) <= k or 0 < (a - b) % n <= k):
                return None
            return ChatRef(chat_id, "oneOnOne", a * n + b, (a, b))
        if not (chat_id.startswith("19:") and chat_id.endswith("@thread.v2")):
            return None
        body = chat_id[3:-10]
        if body.startswith("meeting_"):
            try:
                text = base64.b64decode(body[8:] + "=" * (-len(body[8:]) % 4), validate=True).decode("ascii")
            except (binascii.Error, ValueError, UnicodeDecodeError):
                return None
            c = ids.guid_index(self.seed, "meeting", text)
            if c is None or c >= self.sizes.group_chats or c % 3 != 2:
                return None
        else:
            c = ids.hex32_index(self.seed, "chat", body)
            if c is None or c >= self.sizes.group_chats or c % 3 == 2:
                return None
        return self.group_chat(c)

    def group_chat(self, c: int) -> ChatRef:
        n = self.sizes.users
        size = min(n, 3 + number(self.seed, "chatsize", c) % 6)
        start = (c * n) // max(1, self.sizes.group_chats)
        members = tuple((start + j) % n for j in range(size))
        if c % 3 == 2:
            return ChatRef(ids.meeting_chat_id(self.seed, c), "meeting", c, members)
        return ChatRef(ids.group_chat_id(self.seed, c), "group", c, members)

    def one_on_one(self, a: int, b: int) -> ChatRef:
        n = self.sizes.users
        lo, hi = min(a, b), max(a, b)
        return ChatRef(ids.one_on_one_chat_id(self.user_id(lo), self.user_id(hi)), "oneOnOne", lo * n + hi, (lo, hi))

    def chats_of_user(self, u: int) -> list[ChatRef]:
        n = self.sizes.users
        k = min(self.sizes.one_on_one_chats_per_user, (n - 1) // 2)
        chats: list[ChatRef] = []
        seen: set[int] = set()
        for d in range(1, k + 1):
            for other in ((u + d) % n, (u - d) % n):
                if other != u and other not in seen:
                    seen.add(other)
                    chats.append(self.one_on_one(u, other))
        total = self.sizes.group_chats
        if total:
            lo = math.floor((u - 9) * total / n) - 1
            hi = math.ceil(u * total / n) + 1
            candidates = sorted({c % total for c in range(lo, hi + 1)})
            for c in candidates:
                ref = self.group_chat(c)
                if u in ref.members:
                    chats.append(ref)
        return chats

    def chat_message_count(self, chat: ChatRef) -> int:
        mean = self.sizes.messages_per_chat
        return 0 if mean == 0 else 1 + number(self.seed, "chatmsgs", chat.id) % (2 * mean)

    # --- drives ------------------------------------------------------------------------------------------------
    def drive_item_count(self, owner_tag: str, owner: int) -> int:
        mean = self.sizes.drive_items_per_drive
        return max(2, round(mean * (0.5 + unit(self.seed, "dsize", owner_tag, owner))))

    @staticmethod
    def drive_folder_count(total: int) -> int:
        return max(1, (total - 1) // 6)

    @staticmethod
    def drive_parent(index: int, folders: int) -> int:
        """Parent item index (0 = root). Folders form a ternary tree; files are spread over root + folders."""
        if index <= folders:
            return (index - 1) // 3
        return (index - folders - 1) % (folders + 1)

    @staticmethod
    def drive_child_count(index: int, total: int, folders: int) -> int:
        subfolders = max(0, min(folders, 3 * index + 3) - (3 * index + 1) + 1)
        files = total - folders - 1
        file_children = files // (folders + 1) + (1 if index < files % (folders + 1) else 0)
        return subfolders + file_children

    # --- logs --------------------------------------------------------------------------------------------------
    def log_window(self, days: int) -> tuple[datetime, datetime]:
        return self.anchor - timedelta(days=days), self.anchor
