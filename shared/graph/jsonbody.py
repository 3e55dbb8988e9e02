"""Parsing Graph response bodies without the cyclic garbage collector running inside the parse.

A 999-record page is ~40,000 new dicts and lists. CPython counts container allocations and runs a collection every
700 of them, so one page triggers ~60 young collections, and every 100th of those walks the whole heap (in a busy
worker: the orchestration histories, clients, pools). A parsed JSON tree cannot contain a reference cycle, so those
collections can find nothing to free; pausing the collector for the parse halves `orjson.loads` on such pages.
"""

from __future__ import annotations

import gc
from typing import Any

import orjson


def loads(body: bytes | bytearray | memoryview | str) -> Any:
    """`orjson.loads`, with the collector paused (never resumed if it was already off); raises what orjson does."""
    if not gc.isenabled():
        return orjson.loads(body)
    gc.disable()
    try:
        return orjson.loads(body)
    finally:
        gc.enable()
