"""Demo tenant mutations: the overlay, the change log (`changes_since`) and persistence across restarts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devstack.tenant import DemoTenant, TenantSizes, build_tenant
from devstack.tenant.model import Change

SEED = 77
AT = "2026-01-05T10:00:00Z"


@pytest.fixture
def tenant() -> DemoTenant:
    return build_tenant(SEED, TenantSizes.demo())


def view(t: DemoTenant, kind: str, *parents: str) -> Any:
    found = t.collection(kind, *parents)
    assert found is not None, (kind, parents)
    return found


def mailbox_user(t: DemoTenant) -> str:
    ok = [str(u["id"]) for u in view(t, "users").page(0, 100) if t.mailbox_state(u["id"]) == "ok"]
    return max(ok, key=lambda u: view(t, "messages", u).count())


def team_id(t: DemoTenant) -> str:
    return next(str(g["id"]) for g in view(t, "groups").page(0, 100) if "Team" in g["resourceProvisioningOptions"])


def test_unmutated_collections_have_no_changes(tenant: DemoTenant) -> None:
    assert tenant.current_seq() == 0
    assert view(tenant, "users").changes_since(0) == []
    assert view(tenant, "messages", mailbox_user(tenant)).changes_since(0) == []


def test_create_appends_and_logs_an_upsert(tenant: DemoTenant) -> None:
    users = view(tenant, "users")
    before = users.page(0, 1000)
    created = tenant.apply({"op": "create", "kind": "users", "at": AT,
                            "record": {"displayName": "Zoë Nguyễn", "userPrincipalName": "zoe@contoso.example"}})
    assert created is not None
    assert created["displayName"] == "Zoë Nguyễn" and created["createdDateTime"] == AT
    assert created["id"] not in {u["id"] for u in before}
    assert users.count() == len(before) + 1
    assert users.page(0, 1000) == [*before, created]
    assert users.get(created["id"]) == created
    (change,) = users.changes_since(0)
    assert change == Change(seq=1, kind="upsert", id=created["id"], record=created)
    assert tenant.current_seq() == 1
    assert users.changes_since(1) == []


def test_update_merges_in_place_and_advances_outlook_versions(tenant: DemoTenant) -> None:
    users = view(tenant, "users")
    target = users.page(5, 1)[0]
    updated = tenant.apply({"op": "update", "kind": "users", "id": target["id"], "patch": {"jobTitle": "CTO"}})
    assert updated == {**target, "jobTitle": "CTO"}
    assert users.page(5, 1) == [updated]
    owner = mailbox_user(tenant)
    message = view(tenant, "messages", owner).page(3, 1)[0]
    changed = tenant.apply({"op": "update", "kind": "messages", "parents": [owner], "id": message["id"], "at": AT,
                            "patch": {"isRead": not message["isRead"], "categories": ["Projet Alpha"]}})
    assert changed is not None
    assert changed["changeKey"] != message["changeKey"] and changed["@odata.etag"] == f'W/"{changed["changeKey"]}"'
    assert changed["lastModifiedDateTime"] == AT
    folder_changes = view(tenant, "folderMessages", owner, message["parentFolderId"]).changes_since(1)
    assert [(c.kind, c.id, c.record) for c in folder_changes] == [("upsert", message["id"], changed)]
    assert view(tenant, "messages", owner).changes_since(1) == folder_changes


def test_soft_delete_and_restore_a_user_with_its_memberships(tenant: DemoTenant) -> None:
    users = view(tenant, "users")
    victim = next(u for u in users.page(0, 100) if tenant.layout.groups_of_user(users.page(0, 100).index(u)))
    groups_before = [g for g in view(tenant, "groups").page(0, 100)
                     if view(tenant, "groupMembers", g["id"]).get(victim["id"]) is not None]
    assert groups_before
    count = users.count()
    assert tenant.apply({"op": "soft_delete", "kind": "users", "id": victim["id"]}) is None
    assert users.count() == count - 1 and users.get(victim["id"]) is None
    assert victim["id"] not in {u["id"] for u in users.page(0, 1000)}
    assert tenant.collection("messages", victim["id"]) is None
    kinds = [(c.kind, c.id) for c in users.changes_since(0)]
    assert kinds == [("soft_deleted", victim["id"])]
    for group in groups_before:
        assert view(tenant, "groupMembers", group["id"]).get(victim["id"]) is None
        (change,) = [c for c in view(tenant, "groups").changes_since(0) if c.id == group["id"]]
        assert change.kind == "members"
        assert change.removed == ({"@odata.type": "#microsoft.graph.user", "id": victim["id"]},)
    restored = tenant.apply({"op": "restore", "kind": "users", "id": victim["id"]})
    assert restored == {**victim, "deletedDateTime": None}
    assert users.count() == count and users.page(0, 1000)[users.page(0, 1000).index(restored)] == restored
    assert users.changes_since(0)[-1].kind == "upsert"
    with pytest.raises(ValueError, match="not in deleted items"):
        tenant.apply({"op": "restore", "kind": "users", "id": victim["id"]})


def test_hard_delete_is_permanent(tenant: DemoTenant) -> None:
    app = view(tenant, "applications").page(1, 1)[0]
    tenant.apply({"op": "delete", "kind": "applications", "id": app["id"]})
    (change,) = view(tenant, "applications").changes_since(0)
    assert (change.kind, change.id, change.record) == ("deleted", app["id"], None)
    with pytest.raises(ValueError, match="not in deleted items"):
        tenant.apply({"op": "restore", "kind": "applications", "id": app["id"]})
    with pytest.raises(ValueError, match="does not exist"):
        tenant.apply({"op": "delete", "kind": "applications", "id": app["id"]})


def test_mail_changes_show_in_the_folder_and_the_mailbox(tenant: DemoTenant) -> None:
    owner = mailbox_user(tenant)
    folders = {f["displayName"]: f for f in view(tenant, "mailFolders", owner).page(0, 100)}
    inbox, archive = folders["Inbox"], folders["Archive"]
    in_inbox = view(tenant, "folderMessages", owner, inbox["id"])
    everything = view(tenant, "messages", owner)
    n_inbox, n_all = in_inbox.count(), everything.count()
    doomed = in_inbox.page(2, 1)[0]
    tenant.apply({"op": "delete", "kind": "folderMessages", "parents": [owner, inbox["id"]], "id": doomed["id"]})
    new = tenant.apply({"op": "create", "kind": "folderMessages", "parents": [owner, archive["id"]],
                        "record": {"subject": "Archivé ✅"}})
    assert new is not None and new["parentFolderId"] == archive["id"]
    assert in_inbox.count() == n_inbox - 1 and everything.count() == n_all
    assert doomed["id"] not in {m["id"] for m in everything.page(0, n_all)}
    assert everything.page(n_all - 1, 1) == [new]
    assert view(tenant, "folderMessages", owner, archive["id"]).page(0, 10_000)[-1] == new
    inbox_changes = in_inbox.changes_since(0)
    assert [(c.kind, c.id) for c in inbox_changes] == [("deleted", doomed["id"])]
    archive_changes = view(tenant, "folderMessages", owner, archive["id"]).changes_since(0)
    assert [(c.kind, c.id) for c in archive_changes] == [("upsert", new["id"])]
    assert [c.seq for c in everything.changes_since(0)] == [1, 2]
    refreshed = {f["displayName"]: f for f in view(tenant, "mailFolders", owner).page(0, 100)}
    assert refreshed["Inbox"]["totalItemCount"] == n_inbox - 1
    assert refreshed["Archive"]["totalItemCount"] == archive["totalItemCount"] + 1
    with pytest.raises(ValueError, match="moving an Outlook item"):
        tenant.apply({"op": "update", "kind": "messages", "parents": [owner], "id": new["id"],
                      "patch": {"parentFolderId": inbox["id"]}})


def test_paging_stays_consistent_across_deletions_and_creations(tenant: DemoTenant) -> None:
    owner = mailbox_user(tenant)
    messages = view(tenant, "messages", owner)
    base = messages.page(0, 10_000)
    for i in (0, 3, 4, 9, len(base) - 1):
        tenant.apply({"op": "delete", "kind": "messages", "parents": [owner], "id": base[i]["id"]})
    for k in range(3):
        tenant.apply({"op": "create", "kind": "messages", "parents": [owner], "record": {"subject": f"new {k}"}})
    everything = messages.page(0, 10_000)
    assert len(everything) == messages.count() == len(base) - 5 + 3
    for a in range(0, len(everything) + 2, 3):
        for n, m in ((1, 2), (4, 7), (0, 5)):
            assert messages.page(a, n) + messages.page(a + n, m) == messages.page(a, n + m)
    assert list(messages.iter_from(4)) == everything[4:]


def test_membership_changes_are_logged_on_the_group(tenant: DemoTenant) -> None:
    team = team_id(tenant)
    members = view(tenant, "groupMembers", team)
    outsider = next(u for u in view(tenant, "users").page(0, 100) if members.get(u["id"]) is None)
    insider = members.page(0, 1)[0]
    team_members = view(tenant, "teamMembers", team)
    n = members.count()
    tenant.apply({"op": "add_member", "group_id": team, "member_id": outsider["id"]})
    tenant.apply({"op": "remove_member", "group_id": team, "member_id": insider["id"]})
    assert members.count() == n and team_members.count() == n
    assert members.get(outsider["id"])["displayName"] == outsider["displayName"]
    assert outsider["id"] in {m["userId"] for m in team_members.page(0, 1000)}
    assert insider["id"] not in {m["userId"] for m in team_members.page(0, 1000)}
    changes = view(tenant, "groups").changes_since(0)
    assert [(c.kind, c.id) for c in changes] == [("members", team), ("members", team)]
    assert changes[0].added == ({"@odata.type": "#microsoft.graph.user", "id": outsider["id"]},)
    assert changes[1].removed == ({"@odata.type": "#microsoft.graph.user", "id": insider["id"]},)
    assert members.changes_since(changes[0].seq) == [changes[1]]
    tenant.apply({"op": "add_member", "group_id": team, "member_id": insider["id"]})
    assert members.get(insider["id"]) is not None
    with pytest.raises(ValueError, match="already in members"):
        tenant.apply({"op": "add_member", "group_id": team, "member_id": insider["id"]})
    tenant.apply({"op": "add_member", "group_id": team, "member_id": outsider["id"], "relation": "owners"})
    assert view(tenant, "groupOwners", team).get(outsider["id"]) is not None
    owner_member = next(m for m in team_members.page(0, 1000) if m["userId"] == outsider["id"])
    assert owner_member["roles"] == ["owner"]


def test_deleting_a_drive_folder_deletes_its_content(tenant: DemoTenant) -> None:
    owner = next(u["id"] for u in view(tenant, "users").page(0, 100) if tenant.has_onedrive(u["id"]))
    drive = view(tenant, "drives", owner).page(0, 1)[0]
    items = view(tenant, "driveItems", drive["id"])
    everything = items.page(0, 10_000)
    folder = next(i for i in everything[1:] if "folder" in i and i["folder"]["childCount"] > 0)
    inside = [i for i in everything if i["parentReference"].get("id") == folder["id"]]
    tenant.apply({"op": "delete", "kind": "driveItems", "parents": [drive["id"]], "id": folder["id"]})
    changes = items.changes_since(0)
    assert all(c.kind == "deleted" and c.record is not None for c in changes)
    assert {c.id for c in changes} >= {folder["id"], *(i["id"] for i in inside)}
    assert changes[-1].id == folder["id"]
    assert items.count() == len(everything) - len(changes)
    renamed = tenant.apply({"op": "update", "kind": "driveItems", "parents": [drive["id"]], "id": everything[-1]["id"],
                            "patch": {"name": "Renamed ✏️.txt"}}) if everything[-1]["id"] not in {
        c.id for c in changes} else None
    if renamed is not None:
        assert renamed["eTag"] != everything[-1]["eTag"] and renamed["cTag"] != everything[-1]["cTag"]


def test_late_log_records_are_appended_with_their_own_timestamp(tenant: DemoTenant) -> None:
    audits = view(tenant, "directoryAudits")
    n = audits.count()
    oldest = audits.page(0, 1)[0]["activityDateTime"]
    late = tenant.apply({"op": "append", "kind": "directoryAudits",
                         "record": {"activityDateTime": "2025-12-03T04:05:06.789Z",
                                    "activityDisplayName": "Update user"}})
    assert late is not None and late["activityDateTime"] == "2025-12-03T04:05:06.789Z" < audits.page(n - 1, 1)[0][
        "activityDateTime"]
    assert late["id"].startswith("Directory_") and oldest < late["activityDateTime"]
    assert audits.page(n, 5) == [late]
    sign_in = tenant.apply({"op": "append", "kind": "signIns", "record": {"createdDateTime": "2025-12-20T00:00:00Z"}})
    assert view(tenant, "signIns").get(sign_in["id"]) == sign_in  # type: ignore[index]
    assert [c.kind for c in audits.changes_since(0)] == ["upsert"]
    with pytest.raises(ValueError, match="for log records"):
        tenant.apply({"op": "append", "kind": "users", "record": {}})


@pytest.mark.parametrize(("op", "message"), [
    ({"op": "explode"}, "must be one of"),
    ({"op": "create", "record": {}}, "needs field 'kind'"),
    ({"op": "create", "kind": "users"}, "needs field 'record'"),
    ({"op": "create", "kind": "users", "record": {"displayNme": "typo"}}, r"unknown users properties \['displayNme'\]"),
    ({"op": "create", "kind": "users", "record": {}, "at": "yesterday"}, "not ISO 8601"),
    ({"op": "update", "kind": "users", "id": "nope", "patch": {}}, "does not exist"),
    ({"op": "create", "kind": "messages", "parents": ["nope"], "record": {}}, "does not exist"),
    ({"op": "soft_delete", "kind": "directoryAudits", "id": "x"}, "does not exist|soft_delete is for"),
    ({"op": "create", "kind": "groupMembers", "parents": ["x"], "record": {}}, "does not exist|cannot be created"),
    ({"op": "add_member", "group_id": "nope", "member_id": "x"}, "group 'nope' does not exist"),
    ({"op": "add_member", "member_id": "x"}, "needs field 'group_id'"),
])
def test_bad_ops_are_rejected_whole_with_a_clear_message(tenant: DemoTenant, op: dict[str, Any],
                                                         message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tenant.apply(op)
    assert tenant.current_seq() == 0
    assert tenant.overlay.stores == {}


def test_soft_delete_is_only_for_directory_objects(tenant: DemoTenant) -> None:
    owner = mailbox_user(tenant)
    message = view(tenant, "messages", owner).page(0, 1)[0]
    with pytest.raises(ValueError, match="soft_delete is for directory objects"):
        tenant.apply({"op": "soft_delete", "kind": "messages", "parents": [owner], "id": message["id"]})
    with pytest.raises(ValueError, match=r"cannot be created directly|use add_member"):
        tenant.apply({"op": "create", "kind": "groupMembers", "parents": [team_id(tenant)], "record": {}})


def script(t: DemoTenant) -> dict[str, Any]:
    """A mix of every op kind; returns what it created."""
    owner = mailbox_user(t)
    team = team_id(t)
    user = t.apply({"op": "create", "kind": "users", "record": {"displayName": "Persisted Person"}})
    victim = view(t, "users").page(7, 1)[0]
    t.apply({"op": "soft_delete", "kind": "users", "id": victim["id"]})
    t.apply({"op": "add_member", "group_id": team, "member_id": user["id"]})  # type: ignore[index]
    message = view(t, "messages", owner).page(1, 1)[0]
    t.apply({"op": "update", "kind": "messages", "parents": [owner], "id": message["id"], "patch": {"isRead": True}})
    first = view(t, "messages", owner).page(0, 1)[0]
    t.apply({"op": "delete", "kind": "messages", "parents": [owner], "id": first["id"]})
    t.apply({"op": "append", "kind": "signIns", "record": {"createdDateTime": "2025-12-01T00:00:00Z"}})
    return {"owner": owner, "team": team, "user": user, "victim": victim}


def snapshot(t: DemoTenant, info: dict[str, Any]) -> str:
    owner, team = info["owner"], info["team"]
    return json.dumps({
        "users": view(t, "users").page(0, 1000),
        "messages": view(t, "messages", owner).page(0, 100_000),
        "members": view(t, "groupMembers", team).page(0, 1000),
        "signIns": view(t, "signIns").page(0, 100_000),
        "changes": [repr(c) for kind, p in (("users", ()), ("groups", ()), ("messages", (owner,)), ("signIns", ()))
                    for c in view(t, kind, *p).changes_since(0)],
        "seq": t.current_seq(),
    }, sort_keys=True)


def test_state_dir_survives_a_restart(tmp_path: Path) -> None:
    first = build_tenant(SEED, TenantSizes.demo(), tmp_path)
    info = script(first)
    before = snapshot(first, info)
    seq = first.current_seq()
    assert seq >= 6  # one change per op, plus a members change per group the deleted user left
    second = build_tenant(SEED, TenantSizes.demo(), tmp_path)
    assert snapshot(second, info) == before
    assert view(second, "users").changes_since(seq) == []
    nxt = second.apply({"op": "create", "kind": "users", "record": {"displayName": "After restart"}})
    assert second.current_seq() == seq + 1
    assert view(second, "users").changes_since(seq)[0].record == nxt
    third = build_tenant(SEED, TenantSizes.demo(), tmp_path)
    assert third.current_seq() == seq + 1


def test_a_torn_last_journal_line_is_ignored_and_a_foreign_journal_refused(tmp_path: Path) -> None:
    first = build_tenant(SEED, TenantSizes.demo(), tmp_path)
    info = script(first)
    before = snapshot(first, info)
    journal = next(tmp_path.iterdir())
    with journal.open("a", encoding="utf-8") as fh:
        fh.write('{"op": {"op": "create"}, "effects": [{"e": "pu')  # a crash mid-write
    assert snapshot(build_tenant(SEED, TenantSizes.demo(), tmp_path), info) == before
    with pytest.raises(ValueError, match="holds a tenant built from"):
        build_tenant(SEED + 1, TenantSizes.demo(), tmp_path)


def test_without_state_dir_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    t = build_tenant(SEED, TenantSizes.demo())
    script(t)
    assert list(tmp_path.iterdir()) == []
    assert build_tenant(SEED, TenantSizes.demo()).current_seq() == 0


def test_deleted_objects_leave_roles_and_parent_groups(tenant: DemoTenant) -> None:
    role = view(tenant, "directoryRoles").page(0, 1)[0]
    role_members = view(tenant, "directoryRoleMembers", role["id"])
    admin = role_members.page(0, 1)[0]
    tenant.apply({"op": "delete", "kind": "users", "id": admin["id"]})
    assert role_members.get(admin["id"]) is None
    assert admin["id"] not in {m["id"] for m in role_members.page(0, 100)}
    groups = view(tenant, "groups").page(0, 100)
    parent, nested = next((g, m) for g in groups for m in view(tenant, "groupMembers", g["id"]).page(0, 1000)
                          if m["@odata.type"] == "#microsoft.graph.group")
    seq = tenant.current_seq()
    tenant.apply({"op": "soft_delete", "kind": "groups", "id": nested["id"]})
    assert view(tenant, "groupMembers", parent["id"]).get(nested["id"]) is None
    assert tenant.collection("groupMembers", nested["id"]) is None
    changes = view(tenant, "groups").changes_since(seq)
    assert [(c.kind, c.id) for c in changes] == [("members", parent["id"]), ("soft_deleted", nested["id"])]
    assert changes[0].removed == ({"@odata.type": "#microsoft.graph.group", "id": nested["id"]},)


def test_created_directory_ids_must_be_guids(tenant: DemoTenant) -> None:
    with pytest.raises(ValueError, match="ids are GUIDs"):
        tenant.apply({"op": "create", "kind": "users", "record": {"id": "é-not-a-guid"}})
    fixed = "0b4f6c5e-1b2a-4c3d-8e9f-a0b1c2d3e4f5"
    user = tenant.apply({"op": "create", "kind": "users", "record": {"id": fixed, "displayName": "Fixed Id"}})
    assert user is not None and user["id"] == fixed
    assert view(tenant, "messages", fixed).count() == 0
    assert not tenant.has_onedrive(fixed) and tenant.mailbox_state(fixed) == "ok"
    with pytest.raises(ValueError, match="already exists"):
        tenant.apply({"op": "create", "kind": "users", "record": {"id": fixed}})


def test_callers_cannot_corrupt_the_tenant_by_editing_what_they_get(tenant: DemoTenant) -> None:
    users = view(tenant, "users")
    created = tenant.apply({"op": "create", "kind": "users", "record": {"displayName": "Original"}})
    assert created is not None
    created["displayName"] = "Edited by caller"
    created["businessPhones"].append("+1 555")
    for record in (users.get(created["id"]), users.page(users.count() - 1, 1)[0],
                   users.changes_since(0)[0].record):
        assert record is not None
        record["displayName"] = "Edited again"
        record["businessPhones"].append("x")
    fresh = users.get(created["id"])
    assert fresh is not None and fresh["displayName"] == "Original"
    assert users.changes_since(0)[0].record["displayName"] == "Original"
    folders = view(tenant, "mailFolders", mailbox_user(tenant))
    folders.page(0, 1)[0]["displayName"] = "Mutated"
    assert folders.page(0, 1)[0]["displayName"] == "Inbox"


def test_created_chat_messages_are_plain_messages_even_in_group_chats(tenant: DemoTenant) -> None:
    chat = next(c for u in view(tenant, "users").page(0, 50) for c in view(tenant, "chats", u["id"]).page(0, 50)
                if c["chatType"] == "group")
    for k in range(3):
        created = tenant.apply({"op": "create", "kind": "chatMessages", "parents": [chat["id"]],
                                "record": {"body": {"contentType": "text", "content": f"late {k}"}}})
        assert created is not None
        assert created["messageType"] == "message" and created["eventDetail"] is None
        assert created["from"]["user"]["id"] and created["chatId"] == chat["id"]


def test_created_directory_objects_get_their_own_names(tenant: DemoTenant) -> None:
    upns = {u["userPrincipalName"].lower() for u in view(tenant, "users").page(0, 1000)}
    made = [tenant.apply({"op": "create", "kind": "users", "record": {}}) for _ in range(3)]
    for user in made:
        assert user is not None
        assert user["userPrincipalName"].lower() not in upns and user["userType"] == "Member"
        assert user["mail"] == user["userPrincipalName"]
        upns.add(user["userPrincipalName"].lower())
    named = tenant.apply({"op": "create", "kind": "users", "record": {"userPrincipalName": "ana@contoso.example"}})
    assert named is not None and named["mailNickname"] == "ana" and named["mail"] == "ana@contoso.example"
    mails = {g["mail"] for g in view(tenant, "groups").page(0, 1000) if g["mail"]}
    for _ in range(4):
        group = tenant.apply({"op": "create", "kind": "groups", "record": {}})
        assert group is not None and group["resourceProvisioningOptions"] == []
        assert group["mail"] is None or group["mail"] not in mails
        assert tenant.collection("channels", group["id"]) is None
    team = tenant.apply({"op": "create", "kind": "groups", "record": {"resourceProvisioningOptions": ["Team"],
                                                                       "groupTypes": ["Unified"]}})
    assert team is not None and tenant.collection("channels", team["id"]) is not None
    for kind in ("applications", "servicePrincipals"):
        app = tenant.apply({"op": "create", "kind": kind, "record": {}})
        assert app is not None
        names = app.get("identifierUris", []) + app.get("servicePrincipalNames", [])
        assert all(app["appId"] in name for name in names)


def test_the_change_log_is_tenant_wide_oldest_first_and_may_repeat_an_id(tenant: DemoTenant) -> None:
    owner = mailbox_user(tenant)
    user = view(tenant, "users").page(2, 1)[0]
    message = view(tenant, "messages", owner).page(0, 1)[0]
    tenant.apply({"op": "update", "kind": "users", "id": user["id"], "patch": {"jobTitle": "A"}})
    tenant.apply({"op": "update", "kind": "messages", "parents": [owner], "id": message["id"],
                  "patch": {"isRead": True}})
    tenant.apply({"op": "update", "kind": "users", "id": user["id"], "patch": {"jobTitle": "B"}})
    users = view(tenant, "users").changes_since(0)
    assert [(c.seq, c.id, c.record["jobTitle"]) for c in users] == [(1, user["id"], "A"), (3, user["id"], "B")]
    assert [c.seq for c in view(tenant, "messages", owner).changes_since(0)] == [2]
    assert view(tenant, "users").changes_since(1) == users[1:]
    assert view(tenant, "users").changes_since(3) == []
    assert tenant.current_seq() == 3


def test_overlay_paging_matches_a_plain_list_model() -> None:
    """Random create/update/delete sequences: the view always pages like the list it stands for."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    ops = st.lists(st.tuples(st.sampled_from(["create", "update", "delete"]), st.integers(0, 10_000)),
                   min_size=1, max_size=25)

    @settings(max_examples=40, deadline=None)
    @given(ops, st.integers(0, 60), st.integers(1, 30))
    def check(sequence: list[tuple[str, int]], offset: int, size: int) -> None:
        t = build_tenant(SEED, TenantSizes.demo())
        owner = mailbox_user(t)
        messages = view(t, "messages", owner)
        model = [m["id"] for m in messages.page(0, 100_000)]
        for op, n in sequence:
            if op == "create":
                made = t.apply({"op": "create", "kind": "messages", "parents": [owner], "record": {}})
                model.append(made["id"])  # type: ignore[index]
            elif model:
                target = model[n % len(model)]
                if op == "delete":
                    t.apply({"op": "delete", "kind": "messages", "parents": [owner], "id": target})
                    model.remove(target)
                else:
                    t.apply({"op": "update", "kind": "messages", "parents": [owner], "id": target,
                             "patch": {"isRead": bool(n % 2)}})
        assert messages.count() == len(model)
        assert [m["id"] for m in messages.page(0, 100_000)] == model
        assert [m["id"] for m in messages.page(offset, size)] == model[offset:offset + size]
        assert [m["id"] for m in messages.iter_from(offset)] == model[offset:]
        for item_id in model[offset:offset + 3]:
            assert messages.get(item_id) is not None

    check()


def test_find_user_by_upn_without_scanning(tenant: DemoTenant) -> None:
    users = view(tenant, "users").page(0, 1000)
    for user in users:
        assert tenant.find_user(user["userPrincipalName"]) == user
        assert tenant.find_user(user["userPrincipalName"].upper()) == user
        assert tenant.find_user(user["id"]) == user
    assert any("#EXT#" in u["userPrincipalName"] for u in users)
    assert tenant.find_user("nobody@" + tenant.default_domain) is None
    assert tenant.find_user("AdeleV999999@" + tenant.default_domain) is None
    renamed = tenant.apply({"op": "update", "kind": "users", "id": users[3]["id"],
                            "patch": {"userPrincipalName": "renamed@contoso.example"}})
    assert tenant.find_user("renamed@contoso.example") == renamed
    assert tenant.find_user(users[3]["userPrincipalName"]) is None
    created = tenant.apply({"op": "create", "kind": "users", "record": {"userPrincipalName": "new@contoso.example"}})
    assert tenant.find_user("NEW@contoso.example") == created
    tenant.apply({"op": "delete", "kind": "users", "id": users[5]["id"]})
    assert tenant.find_user(users[5]["userPrincipalName"]) is None


def test_ops_must_be_json(tenant: DemoTenant) -> None:
    from datetime import UTC, datetime

    with pytest.raises(ValueError, match="JSON values only"):
        tenant.apply({"op": "append", "kind": "signIns", "record": {"createdDateTime": datetime.now(UTC)}})
    assert tenant.current_seq() == 0
