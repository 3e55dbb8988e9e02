"""OneDrive / SharePoint records: drives of users and groups, and the items of a drive.

A drive's items are index 0 = root, then folders (a ternary tree), then files spread over root + folders
(`layout.drive_parent`), so parents always precede children (what a delta enumeration needs) and child counts
and paths are computed without scanning.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from devstack.tenant import ids, vocab
from devstack.tenant.layout import Layout
from devstack.tenant.people import person
from devstack.tenant.rng import digest, iso, rng

Record = dict[str, Any]


class Files:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.seed = layout.seed

    def _owner(self, tag: str, index: int) -> tuple[str, str, str]:
        """(display name, id, url path) of a drive's owner."""
        lay = self.layout
        if tag == "u":
            p = person(lay, index)
            slug = p.upn.lower().replace("@", "_").replace(".", "_")
            return p.display, p.id, f"https://contoso{lay.default_domain[7:12]}-my.sharepoint.com/personal/{slug}"
        name = f"group{index}"
        return name, lay.group_id(index), f"https://contoso{lay.default_domain[7:12]}.sharepoint.com/sites/{name}"

    def site_id(self, tag: str, index: int) -> str:
        return ids.guid(self.seed, f"site-{tag}", index)

    def drive_id(self, tag: str, index: int) -> str:
        return ids.drive_id(self.seed, tag, index)

    def drive(self, tag: str, index: int, group_name: str | None = None) -> Record:
        lay = self.layout
        r = rng(self.seed, "drive", tag, index)
        name, owner_id, url = self._owner(tag, index)
        created = lay.anchor - timedelta(days=700 + r.randrange(400))
        total = 1024**4 if tag == "u" else 25 * 1024**4
        used = r.randrange(10**6, 40 * 10**9)
        deleted = r.randrange(0, 10**8)
        owner: Record
        if tag == "u":
            owner = {"user": {"id": owner_id, "displayName": name}}
        else:
            owner = {"@odata.type": "#microsoft.graph.sharePointIdentitySet",
                     "group": {"id": owner_id, "displayName": group_name or name}}
        return {
            "id": self.drive_id(tag, index),
            "createdDateTime": iso(created),
            "description": "",
            "driveType": "business" if tag == "u" else "documentLibrary",
            "lastModifiedDateTime": iso(lay.anchor - timedelta(minutes=r.randrange(1, 20000))),
            "name": "OneDrive" if tag == "u" else "Documents",
            "webUrl": f"{url}/{'Documents' if tag == 'u' else 'Shared%20Documents'}",
            "createdBy": {"user": {"displayName": "System Account"}},
            "lastModifiedBy": {"user": {"id": owner_id, "displayName": name}} if tag == "u" else
            {"user": {"displayName": "System Account"}},
            "owner": owner,
            "quota": {"deleted": deleted, "remaining": total - used - deleted, "state": "normal", "total": total,
                      "used": used, "storagePlanInformation": {"upgradeAvailable": False}},
            "sharePointIds": {"siteId": self.site_id(tag, index), "siteUrl": url,
                              "webId": ids.guid(self.seed, f"web-{tag}", index),
                              "listId": ids.guid(self.seed, f"list-{tag}", index), "listItemId": None,
                              "listItemUniqueId": None, "tenantId": lay.tenant_id},
        }

    def item_count(self, tag: str, index: int) -> int:
        return self.layout.drive_item_count(tag, index)

    def _name(self, drive: str, i: int, folders: int) -> str:
        r = rng(self.seed, "item-name", drive, i)
        if i <= folders:
            base = vocab.FOLDER_TOPICS[r.randrange(len(vocab.FOLDER_TOPICS))]
            return f"{base} {i}"
        topic = vocab.FILE_TOPICS[r.randrange(len(vocab.FILE_TOPICS))]
        ext = vocab.FILE_KINDS[r.randrange(len(vocab.FILE_KINDS))][0]
        return f"{topic} {i}.{ext}"

    def _path(self, drive: str, i: int, folders: int) -> str:
        """`/drives/{id}/root:` followed by the folder names down to item i's parent."""
        names = []
        p = self.layout.drive_parent(i, folders) if i else 0
        while p:
            names.append(self._name(drive, p, folders))
            p = self.layout.drive_parent(p, folders)
        return f"/drives/{drive}/root:" + "".join("/" + n for n in reversed(names))

    def item(self, tag: str, index: int, i: int) -> Record:
        lay = self.layout
        drive = self.drive_id(tag, index)
        total = self.item_count(tag, index)
        folders = lay.drive_folder_count(total)
        r = rng(self.seed, "item", drive, i)
        owner_name, owner_id, url = self._owner(tag, index)
        created = lay.anchor - timedelta(days=600) + timedelta(hours=i * 3 + r.randrange(3))
        modified = created + timedelta(hours=r.randrange(0, 2000))
        if modified > lay.anchor:
            modified = lay.anchor - timedelta(minutes=r.randrange(1, 600))
        etag_guid = ids.guid(self.seed, "etag", i * 7919 + index).upper()
        version = 1 + r.randrange(6)
        author: Record = {"user": {"id": owner_id, "displayName": owner_name}}
        if tag == "g":
            other = r.randrange(lay.sizes.users)
            author = {"user": {"id": lay.user_id(other), "displayName": person(lay, other).display}}
        record: Record = {
            "id": ids.drive_item_id(self.seed, drive, i),
            "createdDateTime": iso(created),
            "eTag": f'"{{{etag_guid}}},{version}"',
            "lastModifiedDateTime": iso(modified),
            "name": "root" if i == 0 else self._name(drive, i, folders),
            "webUrl": url + ("/Documents" if tag == "u" else "/Shared%20Documents"),
            "cTag": f'"c:{{{etag_guid}}},{version}"',
            "size": 0,
            "createdBy": author,
            "lastModifiedBy": author,
            "parentReference": {"driveType": "business" if tag == "u" else "documentLibrary", "driveId": drive,
                                "siteId": self.site_id(tag, index)},
            "fileSystemInfo": {"createdDateTime": iso(created), "lastModifiedDateTime": iso(modified)},
        }
        if i == 0:
            record["root"] = {}
            record["folder"] = {"childCount": lay.drive_child_count(0, total, folders)}
            record["size"] = r.randrange(10**6, 10**9)
            return record
        parent = lay.drive_parent(i, folders)
        path = self._path(drive, i, folders)
        record["parentReference"] |= {"id": ids.drive_item_id(self.seed, drive, parent), "name": path.rsplit("/", 1)[-1]
                                      if parent else "root", "path": path}
        record["webUrl"] += path.split("root:", 1)[1].replace(" ", "%20") + "/" + record["name"].replace(" ", "%20")
        if i <= folders:
            record["folder"] = {"childCount": lay.drive_child_count(i, total, folders)}
            record["size"] = r.randrange(0, 10**8)
        else:
            ext = record["name"].rsplit(".", 1)[1]
            mime = dict(vocab.FILE_KINDS)[ext]
            record["size"] = r.randrange(200, 5 * 10**7)
            record["file"] = {"mimeType": mime, "hashes": {
                "quickXorHash": base64.b64encode(digest(self.seed, "qxh", drive, i, size=20)).decode()}}
            if ext in ("png", "jpg"):
                record["image"] = {"height": r.choice((768, 1080, 3024)), "width": r.choice((1024, 1920, 4032))}
                if ext == "jpg":
                    record["photo"] = {"cameraMake": "Apple", "cameraModel": "iPhone 15", "fNumber": 1.8,
                                       "focalLength": 6.0, "iso": 50, "orientation": 1,
                                       "takenDateTime": iso(created - timedelta(days=2))}
            if r.random() < 0.2:
                record["shared"] = {"scope": r.choice(("users", "organization", "anonymous"))}
        return record

    def item_index(self, tag: str, index: int, item_id: str) -> int | None:
        return ids.drive_item_index(self.seed, self.drive_id(tag, index), item_id)
