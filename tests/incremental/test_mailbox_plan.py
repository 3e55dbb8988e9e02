"""Pure mailbox rules: which folders a hierarchy delta names, what a changes round adds or removes, and how the
default Contacts folder (never listed by Graph) is found."""

from __future__ import annotations

from shared import mailbox_plan as mbx

ROOT = "root"


def folder(fid: str, parent: str = ROOT) -> dict[str, str]:
    return {"id": fid, "parentFolderId": parent, "displayName": fid}


def test_a_hierarchy_round_lists_nested_folders_flat_and_their_unlisted_parents() -> None:
    h = mbx.read_hierarchy([folder("inbox"), folder("clients", "inbox"), folder("contracts", "clients"),
                            folder("archive")])
    assert h.folders == ["inbox", "clients", "contracts", "archive"]
    assert h.removed == [] and h.parents == [ROOT]


def test_the_last_occurrence_of_a_folder_wins() -> None:
    h = mbx.read_hierarchy([folder("a"), {"id": "a", "@removed": {"reason": "deleted"}}, folder("b"),
                            {"id": "c", "@removed": {"reason": "deleted"}}, folder("c"), {"no": "id"}])
    assert h.folders == ["b", "c"] and h.removed == ["a"]


def test_snapshot_reads_every_folder_and_for_contacts_the_default_one_first() -> None:
    h = mbx.read_hierarchy([folder("family", "default"), folder("work", "default")])
    assert mbx.snapshot_folders(h, [], default_folder=False) == ["family", "work"]
    assert mbx.snapshot_folders(h, ["ignored"], default_folder=True) == ["default", "family", "work"]
    empty = mbx.read_hierarchy([])
    assert mbx.snapshot_folders(empty, ["default"], default_folder=True) == ["default"]
    assert mbx.snapshot_folders(empty, [], default_folder=True) == []


def test_a_changes_round_names_new_and_removed_folders_only() -> None:
    known = ["inbox", "archive", "clients"]
    h = mbx.read_hierarchy([folder("inbox"), folder("deep", "clients"), {"id": "archive", "@removed": {}},
                            {"id": "never-seen", "@removed": {}}])
    change = mbx.diff(known, h, [], default_folder=False)
    assert change.added == ["deep"]  # a renamed or moved known folder keeps its cursor
    assert change.removed == ["archive"]  # a folder created and removed between runs concerns nobody
    unchanged = mbx.diff(known, mbx.read_hierarchy([]), [], default_folder=False)
    assert unchanged.added == [] and unchanged.removed == []


def test_contacts_first_child_folder_brings_the_default_folder_along() -> None:
    h = mbx.read_hierarchy([folder("family", "default")])
    assert mbx.diff([], h, [], default_folder=True).added == ["default", "family"]
    assert mbx.diff(["default"], h, [], default_folder=True).added == ["family"]
    assert mbx.diff([], mbx.read_hierarchy([]), ["default"], default_folder=True).added == ["default"]


def test_cursors_and_pages() -> None:
    cursors = {mbx.HIERARCHY: "h", "inbox": "i", "AAMk+/=": "x"}
    assert mbx.folder_cursors(cursors) == {"inbox": "i", "AAMk+/=": "x"}
    assert mbx.default_from_items([{"id": "c1", "parentFolderId": "default"}, {"id": "c2"}]) == ["default"]
    page = mbx.page_body({"value": [{"id": "1"}, "junk"], "@odata.nextLink": "https://g/next"})
    assert page.records == [{"id": "1"}] and page.next_link == "https://g/next" and page.delta_link is None
    assert mbx.page_body({"@odata.deltaLink": "d"}).delta_link == "d"


def test_items_of_one_envelope_share_a_page_worth_of_records() -> None:
    assert [mbx.batch_share(n) for n in (0, 1, 9, 20, 45)] == [1, 1, 9, 20, 20]
