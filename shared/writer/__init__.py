"""JSONL(.gz) block-blob writer, deterministic blob paths, record shaping."""

from shared.writer.blob import BlockBlobJsonlWriter
from shared.writer.paths import partition_name, partition_path
from shared.writer.records import RecordShaper, snake

__all__ = ["BlockBlobJsonlWriter", "RecordShaper", "partition_name", "partition_path", "snake"]
