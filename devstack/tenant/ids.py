"""Ids in the formats Graph uses, that also carry their own index so a lookup by id is O(1) without a table.

Each id hides its index XOR-ed with a mask derived from the id's random-looking part, and that random part is a
hash of the index: decoding recovers the index and re-deriving the id must give back the same string, so made-up or
foreign ids never alias a generated one.

Formats (matching real tenants):
- directory objects, sign-ins, policies: GUIDs (version 4 bits set)
- Outlook items and folders: standard base64 of Exchange's binary entry id (`AAMkAG...AAA=`), so `/`, `+` and `=`
  occur
- drives: `b!` + url-safe base64 of three GUIDs; drive items: `01` + 32 base32 characters
- chats: `19:{userA}_{userB}@unq.gbl.spaces`, `19:{hex}@thread.v2`, `19:meeting_{base64}@thread.v2`;
  channels: `19:{hex}@thread.tacv2`; chat messages: epoch milliseconds; conversation members: base64 text
"""

from __future__ import annotations

import base64
import binascii
import functools
import uuid

from devstack.tenant.rng import digest


def _mask(random_part: bytes, size: int) -> bytes:
    return digest("mask", random_part.hex(), size=size)


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def guid(seed: int, kind: str, index: int) -> str:
    """A v4-looking GUID for (seed, kind, index)."""
    rand = bytearray(digest(seed, kind, index, size=10))
    rand[0] = (rand[0] & 0x0F) | 0x40  # byte 6 of the GUID: version 4
    rand[2] = (rand[2] & 0x3F) | 0x80  # byte 8: RFC 4122 variant
    head = _xor(index.to_bytes(6, "big"), _mask(bytes(rand), 6))
    return str(uuid.UUID(bytes=head + bytes(rand)))


def guid_index(seed: int, kind: str, value: str) -> int | None:
    """The index a `guid(seed, kind, ...)` was made from, or None for any other string."""
    try:
        raw = uuid.UUID(value).bytes
    except (ValueError, AttributeError, TypeError):
        return None
    index = int.from_bytes(_xor(raw[:6], _mask(raw[6:], 6)), "big")
    return index if guid(seed, kind, index) == value.lower() else None


def hex32(seed: int, kind: str, index: int) -> str:
    """32 lowercase hex digits (Teams thread ids)."""
    rand = digest(seed, kind, index, size=12)
    return (_xor(index.to_bytes(4, "big"), _mask(rand, 4)) + rand).hex()


def hex32_index(seed: int, kind: str, value: str) -> int | None:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    if len(raw) != 16:
        return None
    index = int.from_bytes(_xor(raw[:4], _mask(raw[4:], 4)), "big")
    return index if hex32(seed, kind, index) == value else None


# --- Outlook (Exchange entry ids) ------------------------------------------------------------------------------
OUTLOOK_TAGS = {"message": 1, "event": 2, "contact": 3, "mailFolder": 4, "contactFolder": 5}
_OUTLOOK_PREFIX = b"\x00\x03\x24\x00"


@functools.lru_cache(maxsize=4096)
def _outlook_head(seed: int, user_id: str, folder: int, is_folder: bool) -> bytes:
    """The part of an Outlook id shared by every item of one folder (mailbox GUID text and store GUIDs)."""
    store = digest(seed, "store", user_id)
    folder_store = digest(seed, "folder-store", user_id, folder)
    marker = b"\x00\x2e\x00\x00\x00\x00\x00" if is_folder else b"\x00\x46\x00\x00\x00\x00\x00"
    return _OUTLOOK_PREFIX + user_id.encode("ascii") + marker + folder_store + (
        b"\x01\x00" if is_folder else b"\x07\x00") + store


def outlook_id(seed: int, tag: str, user_id: str, folder: int, index: int) -> str:
    """Exchange-style id: mailbox GUID text, store GUIDs, then folder number and item index (base64, with `=`)."""
    if tag in ("mailFolder", "contactFolder"):
        head = _outlook_head(seed, user_id, folder, True)
        tail = b"\x00\x00\x00\x00" + bytes([OUTLOOK_TAGS[tag], folder]) + index.to_bytes(2, "big")
        return base64.b64encode(head + tail).decode("ascii")
    return outlook_item_id(outlook_item_prefix(seed, tag, user_id, folder), index, digest(seed, tag, user_id, index,
                                                                                           size=12))


def outlook_item_prefix(seed: int, tag: str, user_id: str, folder: int) -> bytes:
    """The bytes every item id of one (kind, folder) starts with (callers generating many ids keep it)."""
    return _outlook_head(seed, user_id, folder, False) + b"\x00\x00" + bytes([OUTLOOK_TAGS[tag], folder])


def outlook_item_id(prefix: bytes, index: int, item: bytes) -> str:
    """An item id from its folder's `outlook_item_prefix` and its 12 bytes `digest(seed, tag, user_id, index)`."""
    return base64.b64encode(prefix + index.to_bytes(4, "big") + item + bytes(6)).decode("ascii")


def outlook_parse(seed: int, value: str) -> tuple[str, str, int, int] | None:
    """(tag, user_id, folder, index) of an id made by `outlook_id`, or None."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not raw.startswith(_OUTLOOK_PREFIX) or len(raw) < 89:
        return None
    try:
        user_id = raw[4:40].decode("ascii")
    except UnicodeDecodeError:
        return None
    tags = {v: k for k, v in OUTLOOK_TAGS.items()}
    if raw[40:42] == b"\x00\x2e":
        tag_byte, folder, index = raw[-4], raw[-3], int.from_bytes(raw[-2:], "big")
    else:
        tag_byte, folder, index = raw[83], raw[84], int.from_bytes(raw[85:89], "big")
    tag = tags.get(tag_byte)
    if tag is None or outlook_id(seed, tag, user_id, folder, index) != value:
        return None
    return tag, user_id, folder, index


# --- OneDrive / SharePoint -------------------------------------------------------------------------------------
def drive_id(seed: int, owner_tag: str, owner_index: int) -> str:
    site = digest(seed, "site", owner_tag, owner_index)
    web = digest(seed, "web", owner_tag, owner_index)
    rand = digest(seed, "list", owner_tag, owner_index, size=11)
    payload = _xor(owner_tag.encode("ascii")[:1] + owner_index.to_bytes(4, "big"), _mask(rand, 5))
    return "b!" + base64.urlsafe_b64encode(site + web + payload + rand).decode("ascii")


def drive_parse(seed: int, value: str) -> tuple[str, int] | None:
    if not value.startswith("b!") or len(value) != 66:
        return None
    try:
        raw = base64.urlsafe_b64decode(value[2:])
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 48:
        return None
    plain = _xor(raw[32:37], _mask(raw[37:], 5))
    tag, index = chr(plain[0]), int.from_bytes(plain[1:], "big")
    return (tag, index) if drive_id(seed, tag, index) == value else None


def drive_item_id(seed: int, drive: str, index: int) -> str:
    prefix = digest(seed, "drive-prefix", drive, size=4)
    rand = digest(seed, "drive-item", drive, index, size=12)
    payload = _xor(index.to_bytes(4, "big"), _mask(rand, 4))
    return "01" + base64.b32encode(prefix + payload + rand).decode("ascii")


def drive_item_index(seed: int, drive: str, value: str) -> int | None:
    if not value.startswith("01") or len(value) != 34:
        return None
    try:
        raw = base64.b32decode(value[2:])
    except (binascii.Error, ValueError):
        return None
    index = int.from_bytes(_xor(raw[4:8], _mask(raw[8:], 4)), "big")
    return index if drive_item_id(seed, drive, index) == value else None


# --- Teams -----------------------------------------------------------------------------------------------------
def one_on_one_chat_id(user_a: str, user_b: str) -> str:
    return f"19:{user_a}_{user_b}@unq.gbl.spaces"


def group_chat_id(seed: int, index: int) -> str:
    return f"19:{hex32(seed, 'chat', index)}@thread.v2"


def meeting_chat_id(seed: int, index: int) -> str:
    text = guid(seed, "meeting", index).encode("ascii")
    return "19:meeting_" + base64.b64encode(text).decode("ascii").rstrip("=") + "@thread.v2"


def channel_id(seed: int, team_index: int, channel: int) -> str:
    return f"19:{hex32(seed, 'channel', team_index * 256 + channel)}@thread.tacv2"


def channel_parse(seed: int, value: str) -> tuple[int, int] | None:
    if not (value.startswith("19:") and value.endswith("@thread.tacv2")):
        return None
    index = hex32_index(seed, "channel", value[3:-13])
    return None if index is None else divmod(index, 256)


def conversation_member_id(tenant_id: str, thread_id: str, user_id: str) -> str:
    """Teams' base64 membership id (`MCMjMCMj...`): tenant, thread and user joined by `##`."""
    return base64.b64encode(f"0#0##{tenant_id}##{thread_id}##{user_id}".encode()).decode("ascii")


def conversation_member_parse(value: str) -> tuple[str, str] | None:
    """(thread_id, user_id) of a conversation member id."""
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    parts = text.split("##")
    if len(parts) != 4 or parts[0] != "0#0":
        return None
    return parts[2], parts[3]
