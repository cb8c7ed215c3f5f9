"""Shared inputs: the bundled announcement, read once per test session (the extractor's and the command's tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.cli.demo import DEFAULT_DATA_DIR
from services.extract import Extraction, parse_announcement

SEED = DEFAULT_DATA_DIR / "qfin_2024q1_announcement.txt"


@pytest.fixture(scope="session")
def seed_path() -> Path:
    return SEED


@pytest.fixture(scope="session")
def seed_text(seed_path: Path) -> str:
    return seed_path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def seed(seed_text: str) -> Extraction:
    return parse_announcement(seed_text)
