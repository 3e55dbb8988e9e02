"""Message generation keeps per-mailbox values (owner, folder ids, address prefixes) in bounded caches: the bytes
must not depend on what was generated before, on generation order, or on evictions."""

from __future__ import annotations

import base64
import hashlib
import json
import random

import pytest

from devstack.tenant import DemoTenant, TenantSizes, build_tenant, ids
from devstack.tenant.model import Record
from devstack.tenant.outlook import Outlook
from devstack.tenant.rng import digest

SEED = 424242
SIZES = TenantSizes.preset("small")
USERS = 24
# sha256 of `sample_bytes` (users 0..USERS-1, every message in index order) as the generators wrote it before the
# per-mailbox caches existed: the caches are an optimisation, the bytes served are the contract.
GOLDEN = "07b1b7459ef29765a0a6d6eda7ddecedae442a06e7e13aa3d70f6b29394fb9a7"


def fresh() -> DemoTenant:
    return build_tenant(SEED, SIZES)


def user_ids(tenant: DemoTenant) -> list[str]:
    users = tenant.collection("users")
    assert users is not None
    return [str(u["id"]) for u in users.page(0, USERS)]


def mailbox(tenant: DemoTenant, user_id: str) -> list[Record]:
    view = tenant.collection("messages", user_id)
    assert view is not None
    return view.page(0, view.count())


def encode(records: list[Record]) -> bytes:
    return json.dumps(records, ensure_ascii=False).encode()


def sample_bytes(tenant: DemoTenant) -> bytes:
    return b"".join(encode(mailbox(tenant, u)) for u in user_ids(tenant))


def test_messages_are_the_bytes_served_before_the_caches() -> None:
    data = sample_bytes(fresh())
    assert data.count(b'"receivedDateTime"') > 500  # a real sample, not an empty one
    assert hashlib.sha256(data).hexdigest() == GOLDEN


def test_cold_warm_and_shuffled_generation_give_the_same_bytes() -> None:
    cold = fresh()
    forward = {u: encode(mailbox(cold, u)) for u in user_ids(cold)}
    warm = {u: encode(mailbox(cold, u)) for u in reversed(user_ids(cold))}  # same tenant, caches filled
    assert warm == forward

    shuffled = fresh()
    sizes = {u: len(json.loads(data)) for u, data in forward.items()}
    order = [(u, i) for u, n in sizes.items() for i in range(n)]
    random.Random(7).shuffle(order)
    found: dict[tuple[str, int], Record] = {}
    for u, i in order:  # one message at a time, mailboxes interleaved
        view = shuffled.collection("messages", u)
        assert view is not None
        found[u, i] = view.page(i, 1)[0]
    for u, data in forward.items():
        assert encode([found[u, i] for i in range(sizes[u])]) == data


def test_evicting_mailboxes_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = sample_bytes(fresh())
    monkeypatch.setattr(Outlook, "MAILBOX_CACHE", 2)  # nearly every mailbox is evicted before it is read again
    tenant = fresh()
    users = user_ids(tenant)
    interleaved = b""
    for u in users:
        view = tenant.collection("messages", u)
        other = tenant.collection("messages", users[(users.index(u) + 5) % len(users)])
        assert view is not None and other is not None
        other.page(0, 3)
        interleaved += encode(view.page(0, view.count()))
    assert interleaved == expected


def test_cached_prefixes_agree_with_the_general_address_functions() -> None:
    tenant = fresh()
    lay = tenant.layout
    for u, user_id in enumerate(user_ids(tenant)):
        for i, record in enumerate(mailbox(tenant, user_id)[:40]):
            blob = digest(SEED, "msg-bytes", u, i, size=26)
            conversation = digest(SEED, "conv", u, i // 3, size=22)
            folder = lay.folder_of(u, i)
            assert record["id"] == ids.outlook_id(SEED, "message", user_id, folder, i)
            assert record["parentFolderId"] == ids.outlook_id(SEED, "mailFolder", user_id, folder, 0)
            assert record["conversationId"] == ids.outlook_id(SEED, "mailFolder", user_id, 0, 0)[:-12] + "AQAQ" + \
                base64.b64encode(conversation[:9]).decode()
            assert record["conversationIndex"] == base64.b64encode(b"\x01" + conversation).decode()
            assert record["internetMessageId"].startswith(f"<{blob[16:].hex().upper()}@")
