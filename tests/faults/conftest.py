"""A lab of its own for the fault matrix: its scenarios turn every knob of the stack (throttling, outages,
Azurite restarts), so they never share a stack with other tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faultmatrix.lab import Lab


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "quick: the fault-matrix subset for a fast local check (CI runs them all)")


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    workdir: Path = tmp_path_factory.mktemp("faultmatrix")
    with Lab.started(workdir) as running:
        yield running
