"""The block-blob writer against Azurite (HTTPS + OAuth) with the real azure-storage-blob aio client."""

from __future__ import annotations

import gzip
import os

import orjson
import pytest

from shared.config import Settings
from shared.runtime import get_engine
from shared.writer import BlockBlobJsonlWriter, RecordShaper
from tests.engine.conftest import unique


@pytest.mark.parametrize("compressed", [True, False])
async def test_pages_become_one_blob_of_staged_blocks(engine_settings: Settings, compressed: bool) -> None:
    engine = await get_engine(engine_settings)
    await engine.ensure_container()
    path = f"writer/{unique('blob')}.jsonl" + (".gz" if compressed else "")
    shaper = RecordShaper(tenant_id="t", extracted_at="now", snake_case=False)
    writer = BlockBlobJsonlWriter(engine.blob(path), gzip=compressed, block_size=16 * 1024)
    expected = []
    for page in range(20):
        records = [{"id": f"{page}-{i}", "displayName": "Zoë", "noise": os.urandom(64).hex()} for i in range(50)]
        expected += [r["id"] for r in records]
        await writer.write(shaper.jsonl(records), len(records))
    await writer.commit({"records": str(writer.records)})
    blob = engine.blob(path)
    blocks = await blob.get_block_list("committed")
    assert len(blocks[0]) > 3, "expected several staged blocks, not one buffered upload"
    data = await (await blob.download_blob()).readall()
    text = gzip.decompress(data) if compressed else data
    ids = [orjson.loads(line)["id"] for line in text.splitlines()]
    assert ids == expected
    props = await blob.get_blob_properties()
    assert props.metadata["records"] == "1000"
    assert props.content_settings.content_type == ("application/gzip" if compressed else "application/x-ndjson")
    assert writer.bytes_written == len(data)


async def test_a_rewrite_replaces_the_blob(engine_settings: Settings) -> None:
    engine = await get_engine(engine_settings)
    await engine.ensure_container()
    path = f"writer/{unique('again')}.jsonl"
    for count in (30, 2):
        writer = BlockBlobJsonlWriter(engine.blob(path), gzip=False, block_size=64)
        await writer.write(b"".join(orjson.dumps({"id": i}) + b"\n" for i in range(count)), count)
        await writer.commit()
    data = await (await engine.blob(path).download_blob()).readall()
    assert data.splitlines() == [b'{"id":0}', b'{"id":1}']


async def test_empty_partition_still_writes_a_valid_blob(engine_settings: Settings) -> None:
    engine = await get_engine(engine_settings)
    await engine.ensure_container()
    path = f"writer/{unique('empty')}.jsonl.gz"
    writer = BlockBlobJsonlWriter(engine.blob(path), gzip=True)
    await writer.commit()
    assert gzip.decompress(await (await engine.blob(path).download_blob()).readall()) == b""
