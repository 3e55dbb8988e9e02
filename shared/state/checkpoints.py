"""Checkpoints live in Blob beside the data, never in orchestration history: history would grow with the tenant,
and a checkpoint must survive a purged or restarted orchestration.

Every write is conditional: `If-None-Match: *` creates, `If-Match: <etag read>` advances. Two runs racing on one
partition cannot both advance it; the loser fails retryably and its data blob is merely repeated work. The caller
saves only after the partition's data blob is committed, so a crash in between repeats work and never loses it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from azure.core import MatchConditions
from azure.core.exceptions import AzureError, ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.storage.blob.aio import BlobClient

from shared.runtime import Engine
from shared.writer.paths import partition_name

VERSION = 1


def checkpoint_path(prefix: str, tenant_id: str, stream: str, parent_id: str | None) -> str:
    parts = [prefix, tenant_id, "_state", stream, f"{partition_name(parent_id)}.json"]
    return "/".join(p for p in parts if p)


def checkpoint_folder(prefix: str, tenant_id: str, stream: str) -> str:
    """The folder holding every checkpoint of one stream, with its trailing slash (so `mail` never matches
    `mail_messages`)."""
    return checkpoint_path(prefix, tenant_id, stream, None).rsplit("/", 1)[0] + "/"


class CheckpointSaveError(Exception):
    """The checkpoint could not be advanced (a concurrent run moved it, or storage failed); the data blob of
    this run stays and the next run repeats the partition from the previous checkpoint."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(slots=True)
class Checkpoint:
    """Where a partition's next run starts. `cursors`: deltaLink per sub-partition (`""` = the partition itself,
    else a folder id). `watermark`/`edge`: time-window streams."""

    stream: str
    parent_id: str | None
    fingerprint: str
    query: dict[str, Any]
    cursors: dict[str, str] = field(default_factory=dict)
    watermark: str | None = None
    edge: dict[str, str] = field(default_factory=dict)
    run_id: str = ""
    updated_at: str = ""
    etag: str | None = None
    prior: dict[str, Any] | None = None
    """The state this run started from. A re-execution of the same run (a durable retry after the save) starts
    there again, so it rewrites the run's blob with the same changes instead of an empty one."""

    def _doc(self) -> dict[str, Any]:
        return {"version": VERSION, "stream": self.stream, "parent_id": self.parent_id,
                "fingerprint": self.fingerprint, "query": self.query, "cursors": self.cursors,
                "watermark": self.watermark, "edge": self.edge, "run_id": self.run_id, "updated_at": self.updated_at}

    def to_json(self) -> bytes:
        return orjson.dumps({**self._doc(), "prior": self.prior})

    def start_state(self) -> dict[str, Any]:
        """This checkpoint as the `prior` of the next one."""
        return self._doc()

    def restart_point(self) -> Checkpoint | None:
        """The state before the run that saved this checkpoint (None: that run was a snapshot)."""
        if not self.prior:
            return None
        restored = Checkpoint.from_json(orjson.dumps(self.prior), self.etag)
        if restored is not None:
            restored.prior = None
        return restored

    @classmethod
    def from_json(cls, data: bytes, etag: str | None) -> Checkpoint | None:
        """None for a document this version cannot read (treated like no checkpoint: a fresh snapshot)."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(doc, dict) or doc.get("version") != VERSION:
            return None
        cursors = doc.get("cursors") or {}
        edge = doc.get("edge") or {}
        if not isinstance(cursors, dict) or not isinstance(edge, dict):
            return None
        return cls(stream=str(doc.get("stream")), parent_id=doc.get("parent_id"),
                   fingerprint=str(doc.get("fingerprint")), query=doc.get("query") or {},
                   cursors={str(k): str(v) for k, v in cursors.items()},
                   watermark=doc.get("watermark"), edge={str(k): str(v) for k, v in edge.items()},
                   run_id=str(doc.get("run_id", "")), updated_at=str(doc.get("updated_at", "")), etag=etag,
                   prior=doc.get("prior") if isinstance(doc.get("prior"), dict) else None)


class CheckpointStore:
    """One partition's checkpoints. It keeps the Blob client of each path it touched: building one is costly
    (the generated client's init), and a partition loads and then saves the same path."""

    def __init__(self, engine: Engine, prefix: str, tenant_id: str) -> None:
        self._engine = engine
        self._prefix = prefix
        self._tenant = tenant_id
        self._clients: dict[str, BlobClient] = {}

    def path(self, stream: str, parent_id: str | None) -> str:
        return checkpoint_path(self._prefix, self._tenant, stream, parent_id)

    def _blob(self, stream: str, parent_id: str | None) -> BlobClient:
        path = self.path(stream, parent_id)
        client = self._clients.get(path)
        if client is None:
            client = self._clients[path] = self._engine.blob(path)
        return client

    async def load(self, stream: str, parent_id: str | None) -> tuple[Checkpoint | None, str | None]:
        """(checkpoint or None, the blob's ETag or None when absent). An unreadable blob still returns its ETag,
        so the next save replaces it conditionally."""
        blob = self._blob(stream, parent_id)
        try:
            downloader = await blob.download_blob()
            data = await downloader.readall()
        except ResourceNotFoundError:
            return None, None
        etag = downloader.properties.etag
        return Checkpoint.from_json(data, etag), etag

    async def save(self, checkpoint: Checkpoint, run_id: str) -> None:
        checkpoint.run_id = run_id
        checkpoint.updated_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        blob = self._blob(checkpoint.stream, checkpoint.parent_id)
        try:
            if checkpoint.etag is None:
                result = await blob.upload_blob(checkpoint.to_json(), overwrite=False)
            else:
                result = await blob.upload_blob(checkpoint.to_json(), overwrite=True, etag=checkpoint.etag,
                                                match_condition=MatchConditions.IfNotModified)
        except (ResourceExistsError, ResourceModifiedError):
            raise CheckpointSaveError("CheckpointConflict", "another run advanced this partition's checkpoint "
                                      "first; this run's data is kept and the next run continues from the newer "
                                      "checkpoint") from None
        except AzureError as exc:
            raise CheckpointSaveError("CheckpointNotSaved", f"saving the checkpoint failed "
                                      f"({type(exc).__name__}); the next run repeats this partition") from None
        checkpoint.etag = result.get("etag")


async def prune_departed(engine: Engine, prefix: str, tenant_id: str, stream: str, live: set[str | None]) -> int:
    """Delete the checkpoints of partitions this run no longer has (the user left the scope, the group or
    drive is gone). A parent that comes back later then starts with a snapshot, which a consumer that dropped
    the departed partition needs; resuming an old deltaLink would hand it changes to state it no longer has."""
    folder = checkpoint_folder(prefix, tenant_id, stream)
    keep = {f"{folder}{partition_name(p)}.json" for p in live}
    container = engine.blob_service.get_container_client(engine.settings.output_container)
    removed = 0
    async for item in container.list_blobs(name_starts_with=folder):
        if item.name not in keep:
            with contextlib.suppress(ResourceNotFoundError):
                await container.delete_blob(item.name)
            removed += 1
    return removed


async def any_checkpoint(engine: Engine, prefix: str, tenant_id: str, stream: str) -> bool:
    """Whether the stream has at least one checkpoint: one listing call that asks for a single name. A stream
    without any is read as a snapshot by every partition, which then need not ask for its own checkpoint."""
    container = engine.blob_service.get_container_client(engine.settings.output_container)
    try:
        async for _ in container.list_blobs(name_starts_with=checkpoint_folder(prefix, tenant_id, stream),
                                            results_per_page=1):
            return True
    except ResourceNotFoundError:  # no container yet: a new lake
        return False
    return False
