"""The AsyncAPI document: Guidepost receives the input streams and sends the others; every
message is a stream entry whose `__data__` field holds the event as JSON; company-keyed streams
name their partitions as the workers do."""

from __future__ import annotations

import re
from typing import Any

import pytest
from jsonschema import Draft7Validator

from schemas import INPUT_EVENTS
from schemas.streams import DATA_FIELD, Streams
from services.cli.contracts import asyncapi_document, stream_contracts
from tests.support.asyncapi import parse, parser_modules

STREAMS = Streams()


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document(STREAMS)


def resolve(document: dict[str, Any], reference: str) -> Any:
    node: Any = document
    for part in reference.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def references(node: Any) -> list[str]:
    if isinstance(node, list):
        return [found for item in node for found in references(item)]
    if not isinstance(node, dict):
        return []
    own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    return own + [found for value in node.values() for found in references(value)]


def actions_by_address(document: dict[str, Any]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for operation in document["operations"].values():
        address = resolve(document, operation["channel"]["$ref"])["address"]
        found.setdefault(address, set()).add(operation["action"])
    return found


@pytest.mark.unit
def test_guidepost_receives_the_input_streams_and_sends_every_other(
    document: dict[str, Any],
) -> None:
    actions = actions_by_address(document)
    inputs = set(STREAMS.inputs)

    assert document["asyncapi"] == "3.0.0"
    for contract in stream_contracts(STREAMS):
        expected = "receive" if contract.address in inputs else "send"
        assert actions[contract.address] == {expected}, contract.address
    assert {c.event_type for c in stream_contracts(STREAMS) if c.address in inputs} == set(
        INPUT_EVENTS.values()
    )


@pytest.mark.unit
def test_every_reference_resolves_inside_the_document(document: dict[str, Any]) -> None:
    for reference in references(document):
        assert reference.startswith("#/"), reference
        resolve(document, reference)  # raises KeyError when it points nowhere


@pytest.mark.unit
def test_each_message_is_an_entry_whose_data_field_holds_the_event_as_json(
    document: dict[str, Any],
) -> None:
    for contract in stream_contracts(STREAMS):
        name = contract.event_type.__name__
        payload = document["components"]["messages"][name]["payload"]
        envelope = payload["properties"][DATA_FIELD]

        assert payload["required"] == [DATA_FIELD]
        assert (envelope["type"], envelope["contentMediaType"]) == ("string", "application/json")
        assert resolve(document, envelope["contentSchema"]["$ref"])["title"] == name


@pytest.mark.unit
def test_event_schemas_are_valid_json_schemas_for_asyncapi(document: dict[str, Any]) -> None:
    """AsyncAPI's schema format builds on JSON Schema draft 7."""
    for schema in document["components"]["schemas"].values():
        Draft7Validator.check_schema(schema)


@pytest.mark.unit
@pytest.mark.parametrize("partitions", [1, 4])
def test_partition_channels_name_the_streams_the_workers_use(
    document: dict[str, Any], partitions: int
) -> None:
    streams = Streams(partitions=partitions)
    channels = list(document["channels"].values())
    templates = [
        re.compile("^" + re.escape(c["address"]).replace(r"\{partition\}", "[0-9]+") + "$")
        for c in channels
    ]
    for base in (*streams.partitioned, streams.alerts, streams.dead_letters):
        for physical in streams.all_of(base):
            assert any(t.match(physical) for t in templates), f"{physical}: no channel"


@pytest.mark.deploy
def test_the_asyncapi_parser_accepts_the_document(document: dict[str, Any]) -> None:
    modules, reason = parser_modules()
    if modules is None:
        pytest.skip(f"the AsyncAPI parser is unavailable: {reason}")

    parsed = parse(document, modules)

    assert parsed["errors"] == []
    actions = {op["id"]: op["action"] for op in parsed["operations"]}
    assert actions["receiveResults"] == "receive"
    assert actions["sendAlerts"] == "send"
    assert len(actions) == len(document["operations"])


@pytest.mark.deploy
def test_the_asyncapi_parser_refuses_a_broken_document(document: dict[str, Any]) -> None:
    """The parser does check: an operation pointing at no message is an error."""
    modules, reason = parser_modules()
    if modules is None:
        pytest.skip(f"the AsyncAPI parser is unavailable: {reason}")
    broken = {**document, "operations": {**document["operations"]}}
    broken["operations"]["receiveResults"] = {
        **document["operations"]["receiveResults"],
        "messages": [{"$ref": "#/channels/results/messages/Nothing"}],
    }

    assert parse(broken, modules)["errors"]
