"""Fixtures for the infrastructure tests: the parsed templates and the repository root on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .bicep import BicepFile, parse_file

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
if str(ROOT) not in sys.path:  # `shared` and `scripts` are imported by name, as the hooks run them
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def templates() -> dict[str, BicepFile]:
    """Every .bicep under infra/, keyed by path relative to infra/ (e.g. 'app/api.bicep')."""
    return {path.relative_to(INFRA).as_posix(): parse_file(path) for path in sorted(INFRA.rglob("*.bicep"))}
