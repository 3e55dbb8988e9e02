"""Declarative catalog of the 22 streams (pure data, no I/O)."""

from shared.streams.catalog import CATALOG, STREAMS, StreamSpec, Workload, get_stream, parent_chain, quote_segment

__all__ = ["CATALOG", "STREAMS", "StreamSpec", "Workload", "get_stream", "parent_chain", "quote_segment"]
