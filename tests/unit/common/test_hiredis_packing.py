"""Commands packed by hiredis go on the wire byte for byte as redis-py would pack them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection, SSLConnection
from redis.exceptions import DataError

from services.common.transport.multiplexed_broker import packed_by_hiredis

pytestmark = pytest.mark.unit

ARGUMENT = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)


@given(st.sampled_from(["SET", "XADD", "EVALSHA", "CONFIG GET"]), st.lists(ARGUMENT, max_size=20))
def test_the_bytes_equal_redis_pys_own_packing(command: str, arguments: list[object]) -> None:
    ours, theirs = packed_by_hiredis(Connection)(), Connection()
    assert b"".join(ours.pack_command(command, *arguments)) == b"".join(
        theirs.pack_command(command, *arguments)
    )


def test_buffers_are_packed_as_their_bytes() -> None:
    ours, theirs = packed_by_hiredis(Connection)(), Connection()
    arguments = ("SET", memoryview(b"key"), bytearray(b"value"))
    assert b"".join(ours.pack_command(*arguments)) == b"".join(theirs.pack_command(*arguments))


@pytest.mark.parametrize("value", [True, None])
def test_values_redis_cannot_take_are_refused_as_redis_py_refuses_them(value: object) -> None:
    with pytest.raises(DataError):
        packed_by_hiredis(Connection)().pack_command("SET", "key", value)


def test_tls_connections_keep_their_class_and_get_the_packer_too() -> None:
    packed = packed_by_hiredis(SSLConnection)
    assert issubclass(packed, SSLConnection)
    assert packed_by_hiredis(SSLConnection) is packed
