"""The large preset (10,000 users, 1,000,000 messages) is served from a process far below 1 GiB RSS.

Measured in a fresh child process (this test process carries pytest and the SDK models), paging every user
(pages of 999) and the largest mailbox (pages of 1000, from the start and at the very end): records are generated
on demand, so memory stays flat however much is paged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GIB = 1024.0  # MiB


def test_large_tenant_is_served_under_one_gib() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.tenant_bench", "--preset", "large", "--pages", "12", "--json"],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=True,
    )
    result = json.loads(done.stdout)
    assert result["users"] == 10_000 and result["messages_total"] == 1_000_000
    assert result["largest_mailbox"] > 20_000
    assert result["users_999"]["records"] == 10_000
    assert result["messages_1000"]["records"] == 12_000
    rss = result["rss_mib"]
    assert rss["end"] < GIB
    assert rss["built"] - rss["start"] < 64, "building the tenant must not materialize records"
    assert rss["end"] - rss["built"] < 256, "paging must not accumulate records"
