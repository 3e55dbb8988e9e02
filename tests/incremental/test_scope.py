"""User scope applies to incremental runs: a user leaving the scoping group stops being read (its checkpoint
goes with it), and on coming back starts again with a snapshot."""

from __future__ import annotations

from urllib.parse import quote

from shared.config import Settings
from shared.runtime import close_engines, get_engine
from shared.state import checkpoint_path
from tests.conftest import RunningStack
from tests.engine.oracle import Oracle
from tests.incremental.conftest import Consumer, lake_settings, sync


def q(value: str) -> str:
    return quote(value, safe="")


async def exists(settings: Settings, path: str) -> bool:
    return bool(await (await get_engine(settings)).blob(path).exists())


async def test_a_user_leaving_the_scope_stops_being_read(istack: RunningStack, iworkload: None) -> None:
    oracle = Oracle(istack)
    groups = oracle.ids("/groups")
    group = next(g for g in groups if sum(1 for m in oracle.items(f"/groups/{q(g)}/members")
                                          if m.get("@odata.type") == "#microsoft.graph.user") >= 3)
    users = [m["id"] for m in oracle.items(f"/groups/{q(group)}/members")
             if m.get("@odata.type") == "#microsoft.graph.user"]
    leaver = next(u for u in users if oracle.ids(f"/users/{q(u)}/messages"))
    settings = lake_settings(istack, SYNC_USER_GROUPS=group)
    consumer = Consumer()
    try:
        first = await sync(settings, istack, ["mail_messages"])
        assert {p["parent_id"] for p in first["mail_messages"]} == set(users)
        await consumer.apply(settings, first)
        marker = checkpoint_path(settings.output_prefix, istack.env.tenant_id, "mail_messages", leaver)
        assert await exists(settings, marker)

        istack.admin.graph("POST", "/tenant", {"op": "remove_member", "group_id": group, "member_id": leaver})
        second = await sync(settings, istack, ["mail_messages"])
        assert leaver not in {p["parent_id"] for p in second["mail_messages"]}
        assert not await exists(settings, marker)
        await consumer.apply(settings, second)
        assert leaver not in {k[0] for k in consumer.ids("mail_messages")}

        istack.admin.graph("POST", "/tenant", {"op": "add_member", "group_id": group, "member_id": leaver})
        third = await sync(settings, istack, ["mail_messages"])
        back = next(p for p in third["mail_messages"] if p["parent_id"] == leaver)
        others = [p for p in third["mail_messages"] if p["parent_id"] != leaver and p["status"] == "ok"]
        assert back["status"] == "ok" and back["kind"] == "snapshot"
        assert others and all(p["kind"] == "changes" for p in others)
        await consumer.apply(settings, third)
        expected = {(u, i) for u in users for i in oracle.ids(f"/users/{q(u)}/messages")}
        assert consumer.ids("mail_messages") == expected
    finally:
        await close_engines()
