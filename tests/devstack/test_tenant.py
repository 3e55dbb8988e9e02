"""Demo tenant: determinism, counts, paging, ids, per-parent conditions (no servers needed: pure generation)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from devstack.tenant import KINDS, DemoTenant, TenantSizes, build_tenant

SEED = 20260101


@pytest.fixture(scope="module")
def demo() -> DemoTenant:
    return build_tenant(SEED, TenantSizes.demo())


def every_collection(tenant: DemoTenant) -> list[tuple[str, tuple[str, ...]]]:
    """(kind, parents) for every collection of a small tenant: top level, then every parent of every kind."""
    found: list[tuple[str, tuple[str, ...]]] = []
    users = [u["id"] for u in tenant.collection("users").page(0, 10_000)]  # type: ignore[union-attr]
    groups = tenant.collection("groups").page(0, 10_000)  # type: ignore[union-attr]
    for kind in KINDS[:9]:
        found.append((kind, ()))
    for g in groups:
        found += [("groupMembers", (g["id"],)), ("groupOwners", (g["id"],)), ("groupDrives", (g["id"],))]
        if "Team" in g["resourceProvisioningOptions"]:
            found += [("channels", (g["id"],)), ("teamMembers", (g["id"],))]
    chats: dict[str, None] = {}
    drives: dict[str, None] = {}
    for u in users:
        for kind in ("chats", "mailFolders", "messages", "events", "contactFolders", "contacts", "drives"):
            found.append((kind, (u,)))
        for folder in tenant.collection("mailFolders", u).page(0, 100):  # type: ignore[union-attr]
            found.append(("folderMessages", (u, folder["id"])))
        for folder in tenant.collection("contactFolders", u).page(0, 100):  # type: ignore[union-attr]
            found.append(("folderContacts", (u, folder["id"])))
        chats.update(dict.fromkeys(c["id"] for c in tenant.collection("chats", u).page(0, 1000)))  # type: ignore[union-attr]
        drives.update(dict.fromkeys(d["id"] for d in tenant.collection("drives", u).page(0, 10)))  # type: ignore[union-attr]
    for g in groups:
        drives.update(dict.fromkeys(d["id"] for d in tenant.collection("groupDrives", g["id"]).page(0, 10)))  # type: ignore[union-attr]
    for c in chats:
        found += [("chatMessages", (c,)), ("chatMembers", (c,))]
    for d in drives:
        found.append(("driveItems", (d,)))
    for role in tenant.collection("directoryRoles").page(0, 100):  # type: ignore[union-attr]
        found.append(("directoryRoleMembers", (role["id"],)))
    return found


def dump(tenant: DemoTenant, kind: str, parents: tuple[str, ...]) -> bytes:
    view = tenant.collection(kind, *parents)
    assert view is not None, (kind, parents)
    return json.dumps(view.page(0, view.count()), ensure_ascii=False, sort_keys=False).encode()


def test_same_inputs_give_byte_identical_records_in_the_same_order(demo: DemoTenant) -> None:
    again = build_tenant(SEED, TenantSizes.demo())
    collections = every_collection(demo)
    assert {k for k, _ in collections} == set(KINDS)
    for kind, parents in collections:
        assert dump(demo, kind, parents) == dump(again, kind, parents), kind


def test_another_seed_gives_another_tenant(demo: DemoTenant) -> None:
    other = build_tenant(SEED + 1, TenantSizes.demo())
    assert other.tenant_id != demo.tenant_id
    assert dump(other, "users", ()) != dump(demo, "users", ())


def test_records_do_not_depend_on_generation_order(demo: DemoTenant) -> None:
    fresh = build_tenant(SEED, TenantSizes.demo())
    users = fresh.collection("users")
    assert users is not None
    backwards = [users.page(i, 1)[0] for i in reversed(range(users.count()))]
    assert list(reversed(backwards)) == demo.collection("users").page(0, 1000)  # type: ignore[union-attr]


def test_counts_match_the_sizes_and_the_records() -> None:
    sizes = TenantSizes.small()
    tenant = build_tenant(3, sizes)
    expected = {"users": sizes.users, "groups": sizes.groups, "applications": sizes.applications,
                "servicePrincipals": sizes.service_principals, "directoryAudits": sizes.directory_audits,
                "signIns": sizes.sign_ins, "conditionalAccessPolicies": sizes.conditional_access_policies,
                "directoryRoles": sizes.directory_roles}
    for kind, count in expected.items():
        view = tenant.collection(kind)
        assert view is not None
        assert view.count() == count, kind
        assert len(view.page(0, count + 10)) == count, kind
    teams = [g for g in tenant.collection("groups").page(0, 1000)  # type: ignore[union-attr]
             if "Team" in g["resourceProvisioningOptions"]]
    assert len(teams) == sizes.teams
    total = 0
    for u in tenant.collection("users").page(0, 1000):  # type: ignore[union-attr]
        messages = tenant.collection("messages", u["id"])
        assert messages is not None
        total += messages.count()
    assert total == sizes.total_messages


def test_every_collection_counts_what_it_pages(demo: DemoTenant) -> None:
    for kind, parents in every_collection(demo):
        view = demo.collection(kind, *parents)
        assert view is not None
        records = view.page(0, 100_000)
        assert len(records) == view.count(), (kind, parents)
        assert list(view.iter_from(0)) == records


@pytest.mark.parametrize(("a", "n", "m"), [(0, 7, 5), (3, 1, 40), (10, 0, 3), (0, 100, 100), (45, 10, 10)])
def test_paging_is_consistent(demo: DemoTenant, a: int, n: int, m: int) -> None:
    for kind, parents in every_collection(demo)[:60]:
        view = demo.collection(kind, *parents)
        assert view is not None
        assert view.page(a, n) + view.page(a + n, m) == view.page(a, n + m), kind
        assert view.page(view.count(), 5) == []


def test_ids_are_unique_and_found_by_get(demo: DemoTenant) -> None:
    for kind, parents in every_collection(demo):
        view = demo.collection(kind, *parents)
        assert view is not None
        records = view.page(0, 100_000)
        ids = [r["id"] for r in records]
        assert len(ids) == len(set(ids)), (kind, parents)
        for record in records[:25]:
            assert view.get(record["id"]) == record, (kind, record["id"])
        assert view.get("00000000-0000-0000-0000-000000000000") is None
        assert view.get("AAMkAGI2TG93AAA=") is None


def test_unknown_parents_are_none_and_bad_calls_name_the_fix(demo: DemoTenant) -> None:
    assert demo.collection("messages", "00000000-0000-0000-0000-000000000000") is None
    assert demo.collection("groupMembers", "nope") is None
    assert demo.collection("driveItems", "b!nope") is None
    assert demo.collection("chatMessages", "19:nope@thread.v2") is None
    with pytest.raises(ValueError, match="unknown collection kind"):
        demo.collection("mailboxes")
    with pytest.raises(ValueError, match="takes 1 parent"):
        demo.collection("messages")
    with pytest.raises(ValueError, match=r"TenantSizes\.teams"):
        TenantSizes(groups=2, teams=3)
    with pytest.raises(ValueError, match="unknown tenant size preset"):
        TenantSizes.preset("huge")


def test_id_formats_look_like_graph(demo: DemoTenant) -> None:
    users = demo.collection("users").page(0, 100)  # type: ignore[union-attr]
    guid = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
    assert all(__import__("re").match(guid, u["id"]) for u in users)
    owner = next(u["id"] for u in users if demo.mailbox_state(u["id"]) == "ok"
                 and demo.collection("messages", u["id"]).count() > 5)  # type: ignore[union-attr]
    message_ids = [m["id"] for u in users for m in demo.collection("messages", u["id"]).page(0, 50)]  # type: ignore[union-attr]
    assert all(i.startswith("AAMkA") and i.endswith("=") for i in message_ids)
    assert any("/" in i for i in message_ids) and any("+" in i for i in message_ids)
    folders = demo.collection("mailFolders", owner).page(0, 50)  # type: ignore[union-attr]
    assert {"Inbox", "Sent Items", "Deleted Items"} <= {f["displayName"] for f in folders}
    drives = [d for u in users for d in demo.collection("drives", u["id"]).page(0, 5)]  # type: ignore[union-attr]
    assert drives and all(d["id"].startswith("b!") and len(d["id"]) == 66 for d in drives)
    items = demo.collection("driveItems", drives[0]["id"]).page(0, 100)  # type: ignore[union-attr]
    assert all(i["id"].startswith("01") and len(i["id"]) == 34 and i["id"].isupper() for i in items)
    chats = [c for u in users for c in demo.collection("chats", u["id"]).page(0, 50)]  # type: ignore[union-attr]
    assert any(c["id"].endswith("@unq.gbl.spaces") for c in chats)
    assert any(c["id"].endswith("@thread.v2") for c in chats)
    assert any(c["chatType"] == "meeting" for c in chats)
    team = next(g for g in demo.collection("groups").page(0, 100)  # type: ignore[union-attr]
                if "Team" in g["resourceProvisioningOptions"])
    channels = demo.collection("channels", team["id"]).page(0, 50)  # type: ignore[union-attr]
    assert all(c["id"].startswith("19:") and c["id"].endswith("@thread.tacv2") for c in channels)
    audits = demo.collection("directoryAudits").page(0, 10)  # type: ignore[union-attr]
    assert all(a["id"].startswith("Directory_") for a in audits)
    chat_messages = demo.collection("chatMessages", chats[0]["id"]).page(0, 10)  # type: ignore[union-attr]
    assert chat_messages and all(m["id"].isdigit() and len(m["id"]) == 13 for m in chat_messages)


def test_messages_are_monotonic_in_time_and_span_the_last_year(demo: DemoTenant) -> None:
    user = max((u["id"] for u in demo.collection("users").page(0, 100)),  # type: ignore[union-attr]
               key=lambda u: demo.collection("messages", u).count())  # type: ignore[union-attr]
    messages = demo.collection("messages", user).page(0, 100_000)  # type: ignore[union-attr]
    times = [m["receivedDateTime"] for m in messages]
    assert times == sorted(times)
    assert all(t.endswith("Z") for t in times)
    first = datetime.fromisoformat(times[0].replace("Z", "+00:00"))
    assert (datetime(2026, 1, 1, tzinfo=UTC) - first).days in range(300, 366)
    for folder in demo.collection("mailFolders", user).page(0, 50):  # type: ignore[union-attr]
        in_folder = demo.collection("folderMessages", user, folder["id"])
        assert in_folder is not None
        assert in_folder.count() == folder["totalItemCount"]
        assert all(m["parentFolderId"] == folder["id"] for m in in_folder.page(0, 10_000))


def test_per_parent_conditions_are_present_in_the_demo(demo: DemoTenant) -> None:
    users = demo.collection("users").page(0, 100)  # type: ignore[union-attr]
    states = Counter(demo.mailbox_state(u["id"]) for u in users)
    assert states["ok"] > 0 and states["no_mailbox"] > 0 and 1 <= states["access_denied"] <= 2
    no_drive = [u["id"] for u in users if not demo.has_onedrive(u["id"])]
    assert no_drive
    for user_id in no_drive:
        assert demo.collection("drives", user_id).count() == 0  # type: ignore[union-attr]
    guests = [u for u in users if u["userType"] == "Guest"]
    assert guests and all(demo.mailbox_state(g["id"]) == "no_mailbox" for g in guests)
    assert all("#EXT#@" in g["userPrincipalName"] for g in guests)


def test_unicode_and_nulls_are_present(demo: DemoTenant) -> None:
    text = dump(demo, "users", ()).decode()
    assert any(ord(ch) > 0x3000 for ch in text)  # CJK
    subjects = "".join(m["subject"] for u in demo.collection("users").page(0, 50)  # type: ignore[union-attr]
                       for m in demo.collection("messages", u["id"]).page(0, 50))  # type: ignore[union-attr]
    assert any(ord(ch) >= 0x1F300 for ch in subjects)  # emoji
    assert any(ch in subjects for ch in "éèàü")
    assert "null" in text


def test_chats_are_shared_by_their_members(demo: DemoTenant) -> None:
    users = [u["id"] for u in demo.collection("users").page(0, 100)]  # type: ignore[union-attr]
    seen = 0
    for user_id in users[:10]:
        for chat in demo.collection("chats", user_id).page(0, 100):  # type: ignore[union-attr]
            members = demo.collection("chatMembers", chat["id"]).page(0, 100)  # type: ignore[union-attr]
            member_users = [m["userId"] for m in members]
            assert user_id in member_users
            for other in member_users:
                theirs = demo.collection("chats", other).get(chat["id"])  # type: ignore[union-attr]
                assert theirs is not None
                assert {**theirs, "viewpoint": None} == {**chat, "viewpoint": None}  # viewpoint is per user
                seen += 1
    assert seen > 20


def test_teams_have_channels_and_members_from_the_group(demo: DemoTenant) -> None:
    for group in demo.collection("groups").page(0, 100):  # type: ignore[union-attr]
        if "Team" not in group["resourceProvisioningOptions"]:
            assert demo.collection("channels", group["id"]) is None
            continue
        channels = demo.collection("channels", group["id"]).page(0, 100)  # type: ignore[union-attr]
        assert channels[0]["displayName"] == "General"
        members = demo.collection("teamMembers", group["id"]).page(0, 1000)  # type: ignore[union-attr]
        group_members = demo.collection("groupMembers", group["id"]).page(0, 1000)  # type: ignore[union-attr]
        assert [m["userId"] for m in members] == [m["id"] for m in group_members]
        assert all(m["@odata.type"] == "#microsoft.graph.aadUserConversationMember" for m in members)
        owners = {o["id"] for o in demo.collection("groupOwners", group["id"]).page(0, 100)}  # type: ignore[union-attr]
        assert {m["userId"] for m in members if "owner" in m["roles"]} == owners


def test_members_are_typed_directory_objects(demo: DemoTenant) -> None:
    types: Counter[str] = Counter()
    for group in demo.collection("groups").page(0, 100):  # type: ignore[union-attr]
        for member in demo.collection("groupMembers", group["id"]).page(0, 1000):  # type: ignore[union-attr]
            types[member["@odata.type"]] += 1
            assert "displayName" in member
    assert types["#microsoft.graph.user"] > 0 and types["#microsoft.graph.group"] > 0


def test_large_preset_is_skewed_and_exact() -> None:
    tenant = build_tenant(7, TenantSizes.large())
    counts = sorted(tenant.layout.mailbox_counts)
    assert sum(counts) == 1_000_000
    assert counts[len(counts) // 2] < 20  # most mailboxes are small
    assert counts[-1] > 20_000  # a few are huge
    assert tenant.collection("users").count() == 10_000  # type: ignore[union-attr]


def fingerprint(tenant: DemoTenant) -> str:
    import hashlib

    h = hashlib.sha256()
    for kind, parents in every_collection(tenant):
        h.update(dump(tenant, kind, parents))
    return h.hexdigest()


def test_records_are_identical_across_processes_and_hash_seeds(demo: DemoTenant) -> None:
    """Nothing may depend on Python's per-process str hash salt or on what was generated before."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("from devstack.tenant import TenantSizes, build_tenant\n"
            "from tests.devstack.test_tenant import fingerprint\n"
            f"print(fingerprint(build_tenant({SEED}, TenantSizes.demo())))\n")
    repo = Path(__file__).resolve().parents[2]
    prints = {
        subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True, timeout=120,
                       env={**os.environ, "PYTHONHASHSEED": salt}).stdout.strip()
        for salt in ("1", "2")
    }
    assert prints == {fingerprint(demo)}


def test_all_company_holds_every_user_and_pages_beyond_one_default_page() -> None:
    tenant = build_tenant(5, TenantSizes.small())
    groups = tenant.collection("groups").page(0, 1000)  # type: ignore[union-attr]
    (everyone,) = [g for g in groups if g["displayName"] == "All Company"]
    members = tenant.collection("groupMembers", everyone["id"])
    assert members is not None
    assert members.count() == 200 > 100  # more than Graph's default page of 100 directory objects
    assert {m["id"] for m in members.page(0, 1000)} == {u["id"] for u in tenant.collection("users").page(0, 1000)}  # type: ignore[union-attr]


def test_lower_bound_finds_a_time_in_a_sorted_collection(demo: DemoTenant) -> None:
    from devstack.tenant.rng import parse_iso

    user = max((u["id"] for u in demo.collection("users").page(0, 100)),  # type: ignore[union-attr]
               key=lambda u: demo.collection("messages", u).count())  # type: ignore[union-attr]
    for kind, parents in (("messages", (user,)), ("directoryAudits", ()), ("signIns", ())):
        view = demo.collection(kind, *parents)
        assert view is not None and view.sorted_by is not None
        records = view.page(0, view.count())
        times = [parse_iso(r[view.sorted_by]) for r in records]
        assert times == sorted(times)
        for k in (0, 1, len(records) // 2, len(records) - 1):
            assert view.lower_bound(records[k][view.sorted_by]) == k
        assert view.lower_bound("2000-01-01T00:00:00Z") == 0
        assert view.lower_bound("2100-01-01T00:00:00Z") == view.ordered_count() == len(records)
    users = demo.collection("users")
    assert users is not None and users.sorted_by is None
    with pytest.raises(ValueError, match="no time order"):
        users.lower_bound("2026-01-01T00:00:00Z")


NASTY_IDS = ["", " ", "é", "null", "../..", "AAMk", "AAMkAGI2TG93AAA=", "b!", "b!" + "A" * 64, "01", "01" + "A" * 32,
             "19:", "19:meeting_@thread.v2", "19:meeting_!!!@thread.v2", "19:_@unq.gbl.spaces", "19:zz@thread.tacv2",
             "Directory___1", "Directory_x_y_12", "１２３", "0" * 13, "x" * 500, "MCMjMCMj", "\x00", "🚀"]


def test_foreign_ids_are_not_found_anywhere(demo: DemoTenant) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    views = [demo.collection(kind, *parents) for kind, parents in every_collection(demo)[::7]]
    for value in NASTY_IDS:
        for view in views:
            assert view is not None
            assert view.get(value) is None
        for kind in KINDS[9:]:
            parents = (value,) * (2 if kind in ("folderMessages", "folderContacts") else 1)
            assert demo.collection(kind, *parents) is None, (kind, value)

    @settings(max_examples=150, deadline=None)
    @given(st.text(max_size=80))
    def check(value: str) -> None:
        for view in views[:40]:
            assert view is not None
            assert view.get(value) is None

    check()


@pytest.mark.parametrize("sizes", [
    TenantSizes(users=1, guests=0, groups=0, teams=0, members_per_group=0, channels_per_team=0,
                one_on_one_chats_per_user=0, group_chats=0, messages_per_chat=0, messages_per_mailbox=0,
                mailbox_skew=0, events_per_user=0, contacts_per_user=0, contact_folders_per_user=0,
                drive_items_per_drive=0, directory_audits=0, sign_ins=0, applications=0, service_principals=0,
                directory_roles=0, members_per_role=0, conditional_access_policies=0),
    TenantSizes(users=3, guests=1, groups=2, teams=1, members_per_group=1, one_on_one_chats_per_user=5,
                group_chats=7, messages_per_mailbox=1, mailbox_skew=3.0, directory_roles=50),
])
def test_degenerate_sizes_still_make_a_consistent_tenant(sizes: TenantSizes) -> None:
    tenant = build_tenant(1, sizes)
    for kind, parents in every_collection(tenant):
        view = tenant.collection(kind, *parents)
        assert view is not None
        records = view.page(0, 10_000)
        assert len(records) == view.count()
        assert len({r["id"] for r in records}) == len(records)
    assert tenant.collection("users").count() == sizes.users  # type: ignore[union-attr]


def test_sizes_reject_bad_values_by_name() -> None:
    with pytest.raises(ValueError, match=r"TenantSizes\.users must be a non-negative integer"):
        TenantSizes(users=10.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"TenantSizes\.events_per_user"):
        TenantSizes(events_per_user=-1)
    with pytest.raises(ValueError, match="unknown TenantSizes field"):
        TenantSizes.from_json({"usrs": 3})
    assert TenantSizes.from_json(TenantSizes.large().to_json()) == TenantSizes.large()


def test_some_messages_carry_long_bodies(demo: DemoTenant) -> None:
    sizes = [len(m["body"]["content"]) for u in demo.collection("users").page(0, 100)  # type: ignore[union-attr]
             for m in demo.collection("messages", u["id"]).page(0, 1000)]  # type: ignore[union-attr]
    assert max(sizes) > 30_000 > sorted(sizes)[len(sizes) // 2]


def test_the_command_line_prints_records_as_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    from devstack.tenant.__main__ import main

    assert main(["users", "--limit", "2", "--seed", str(SEED)]) == 0
    lines = capsys.readouterr().out.splitlines()
    users = [json.loads(line) for line in lines]
    assert users == build_tenant(SEED, TenantSizes.demo()).collection("users").page(0, 2)  # type: ignore[union-attr]
    assert main(["messages", users[0]["id"], "--offset", "1", "--limit", "1", "--seed", str(SEED)]) == 0
    assert len(capsys.readouterr().out.splitlines()) <= 1
    assert main(["messages", "00000000-0000-0000-0000-000000000000"]) == 1
    with pytest.raises(SystemExit):
        main(["messages"])  # missing parent: argparse names the problem


def test_contacts_generate_for_every_creation_date() -> None:
    """A contact created on 29 February once made its birthday an invalid date (Graph answered 500)."""
    tenant = build_tenant(5, TenantSizes.preset("medium"))
    users = tenant.collection("users")
    assert users is not None
    generated = 0
    for user in users.iter_from(0):
        folders = tenant.collection("contactFolders", user["id"])
        for folder in folders.iter_from(0) if folders is not None else []:
            contacts = tenant.collection("folderContacts", user["id"], folder["id"])
            generated += len(list(contacts.iter_from(0))) if contacts is not None else 0
    assert generated > 0
