"""JSON Lines (optionally gzip) into ONE block blob per partition, staged as pages arrive.

Memory is bounded by one block plus one page whatever the partition size: blocks are staged as soon as the
buffer passes the block size and only the block ids are kept; the block list is committed at the end (or, when
the partition never filled a block, the one buffer is put as the whole blob), which replaces any earlier blob at
that path atomically (a retried partition overwrites, never duplicates; readers never see half a partition).
"""

from __future__ import annotations

import base64
import zlib
from typing import Any

from azure.storage.blob import BlobBlock, ContentSettings
from azure.storage.blob.aio import BlobClient

DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024
# zlib level 1: about a quarter of level 6's CPU per record for output ~10-25% larger (JSON Lines is very
# repetitive); CPU is what a sync pays per record, Blob capacity is cheap and ADLS readers do not care.
GZIP_LEVEL = 1


class BlockBlobJsonlWriter:
    def __init__(self, blob: BlobClient, *, gzip: bool, block_size: int = DEFAULT_BLOCK_SIZE,
                 metadata: dict[str, str] | None = None) -> None:
        self._blob = blob
        self._gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if gzip else None
        self._block_size = block_size
        self._buffer = bytearray()
        self._block_ids: list[str] = []
        self._metadata = metadata or {}
        self.raw_bytes = 0
        self.bytes_written = 0
        self.records = 0

    def reset(self) -> None:
        """Forget everything written so far (a delta resync restarts the partition). Staged but uncommitted
        blocks are never part of the blob; the next blocks reuse their ids and replace them."""
        self._gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31) if self._gzip is not None else None
        self._buffer = bytearray()
        self._block_ids = []
        self.raw_bytes = 0
        self.bytes_written = 0
        self.records = 0

    async def write(self, data: bytes, records: int) -> None:
        self.raw_bytes += len(data)
        self.records += records
        self._buffer += self._gzip.compress(data) if self._gzip else data
        if len(self._buffer) >= self._block_size:
            await self._stage()

    async def _stage(self) -> None:
        if not self._buffer:
            return
        block_id = base64.b64encode(f"block-{len(self._block_ids):08d}".encode()).decode("ascii")
        chunk = bytes(self._buffer)  # bytes, so the SDK can resend the block on a retry
        self._buffer = bytearray()
        # Reserve the id and its place before awaiting, so concurrent writers keep ids unique and ordered.
        self._block_ids.append(block_id)
        self.bytes_written += len(chunk)
        await self._blob.stage_block(block_id, chunk, length=len(chunk))

    async def commit(self, extra_metadata: dict[str, str] | None = None) -> None:
        """Make the blob. A partition that never filled a block (most mailboxes) is one Put Blob instead of
        Put Block + Put Block List: the same atomic replace, half the Storage calls and their client CPU."""
        if self._gzip is not None:
            self._buffer += self._gzip.flush()
        content = ContentSettings(content_type="application/gzip" if self._gzip else "application/x-ndjson")
        metadata: dict[str, Any] = {**self._metadata, **(extra_metadata or {})}
        if not self._block_ids:
            data = bytes(self._buffer)
            self._buffer = bytearray()
            self.bytes_written += len(data)
            await self._blob.upload_blob(data, length=len(data), overwrite=True, content_settings=content,
                                         metadata=metadata)
            return
        await self._stage()
        blocks = [BlobBlock(block_id=b) for b in self._block_ids]
        await self._blob.commit_block_list(blocks, content_settings=content, metadata=metadata)
