"""Only the multiplexed transport reaches into redis-py's and FastStream's private internals:
the rest of the code, and the stock transport, use what both libraries publish."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
TRANSPORT = REPO / "services" / "common" / "transport"
PRIVATE = re.compile(
    r"faststream\._internal|faststream\.redis\.(message|parser|configs|subscriber|publisher)"
    r"|redis\._parsers|redis\.asyncio\.(client|connection)|_make_connection_state"
    r"|\.running\s*=|DefaultCodec|MessageFormat\b|FAKE_CONSUMER|connection_class"
    r"|command_stack|response_callbacks|^\s*(import|from) hiredis"
)
# the modules whose whole point is to replace what the libraries do
MULTIPLEXED = {TRANSPORT / "multiplexed.py", TRANSPORT / "multiplexed_broker.py"}


def sources() -> list[Path]:
    files = [*(REPO / "services").rglob("*.py"), *(REPO / "bench").rglob("*.py")]
    return sorted(path for path in files if path not in MULTIPLEXED)


def private_uses(path: Path) -> list[str]:
    return [
        f"{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if PRIVATE.search(line)
    ]


def test_the_check_sees_the_stock_transport_and_catches_the_multiplexed_one() -> None:
    assert TRANSPORT / "stock.py" in sources()
    assert REPO / "services" / "app.py" in sources()
    assert all(private_uses(path) for path in MULTIPLEXED)


@pytest.mark.parametrize("path", sources(), ids=lambda path: str(path.relative_to(REPO)))
def test_no_private_internals_outside_the_multiplexed_transport(path: Path) -> None:
    assert private_uses(path) == []
