"""The block-blob writer against Azurite (HTTPS + OAuth) with the real azure-storage-blob aio client."""

from __future__ import annotations

import gzip
import os
from typing import Any

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
    writer = BlockBlobJsonlWriter(engine.blob(path), gzip=compressed, block_size=8 * 1024)
    expected = []
    for page in range(40):
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
    assert props.metadata["records"] == "2000"
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


@pytest.mark.parametrize("snake_case", [False, True])
def test_page_lines_are_the_shaped_records_whatever_the_fields(snake_case: bool) -> None:
    """The page serialiser's fast path gives exactly what shaping each record and dumping it gives, and a Graph
    field named like an injected column (or an empty record) still loses to the injected value."""
    shaper = RecordShaper(tenant_id="t-1", extracted_at="2026-01-01T00:00:00.000Z", snake_case=snake_case,
                          parent_key="user_id", parent_id="u-ü")
    pages: list[list[dict[str, Any]]] = [
        [{"id": "1", "displayName": "Zoë", "nested": {"emailAddress": {"address": "a@b"}}, "n": None}],
        [{"id": "2", "tenant_id": "graph's own"}, {"id": "3"}],
        [{"id": "4", "user_id": "other"}],
        [{}, {"id": "5", "_extracted_at": 1}],
    ]
    for page in pages:
        lines = shaper.jsonl(page).split(b"\n")
        assert lines[-1] == b""
        assert lines[:-1] == [orjson.dumps(shaper.shape(r)) for r in page]
        for line in lines[:-1]:
            decoded = orjson.loads(line)
            assert (decoded["tenant_id"], decoded["user_id"]) == ("t-1", "u-ü")
    first = orjson.loads(shaper.jsonl(pages[0]))
    assert list(first)[-3:] == ["user_id", "tenant_id", "_extracted_at"]


async def test_a_partition_smaller_than_a_block_is_put_whole_and_replaces_a_staged_one(
        engine_settings: Settings) -> None:
    engine = await get_engine(engine_settings)
    await engine.ensure_container()
    path = f"writer/{unique('small')}.jsonl.gz"
    big = BlockBlobJsonlWriter(engine.blob(path), gzip=False, block_size=1024)
    await big.write(b"".join(orjson.dumps({"id": i, "noise": os.urandom(32).hex()}) + b"\n" for i in range(200)),
                    200)
    await big.commit()
    assert (await engine.blob(path).get_block_list("committed"))[0] != [], "staged blocks first"
    small = BlockBlobJsonlWriter(engine.blob(path), gzip=True, metadata={"stream": "s"})
    await small.write(b'{"id":"only"}\n', 1)
    await small.commit({"records": "1"})
    blob = engine.blob(path)
    data = await (await blob.download_blob()).readall()
    assert gzip.decompress(data) == b'{"id":"only"}\n' and small.bytes_written == len(data)
    assert (await blob.get_block_list("committed"))[0] == [], "one Put Blob, no block list"
    props = await blob.get_blob_properties()
    assert props.metadata == {"stream": "s", "records": "1"}
    assert props.content_settings.content_type == "application/gzip"
