"""Shared inputs: the bundled announcement, read once per test session (the extractor's and the command's tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.extract import Extraction, parse_announcement

REPO = Path(__file__).resolve().parents[2]
SEED_CANDIDATES = (
    REPO / "data" / "qfin_2024q1_announcement.txt",
    REPO / "services" / "data" / "seed_announcement.txt",
)


@pytest.fixture(scope="session")
def seed_path() -> Path:
    return next(path for path in SEED_CANDIDATES if path.exists())


@pytest.fixture(scope="session")
def seed_text(seed_path: Path) -> str:
    return seed_path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def seed(seed_text: str) -> Extraction:
    return parse_announcement(seed_text)
