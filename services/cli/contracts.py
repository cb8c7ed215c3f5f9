"""JSON Schemas for every event and the AsyncAPI 3 document, generated from the models.

Input events are described as the service accepts them (`schemas.json_schema.input_schema`),
the events Guidepost writes as it writes them. The AsyncAPI document names each stream, who
receives and who sends on it, the stream entry's envelope (one field, `__data__`, holding the
event as JSON) and the partitions a company-keyed stream is split into.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas import (
    ALL_EVENTS,
    INPUT_EVENTS,
    Alert,
    AlertSignal,
    ForecastUpdated,
    GuidanceIssued,
    HistoryUpdated,
    MetricReported,
    ResultsPublished,
    TrendUpdated,
)
from schemas.deadletter import DeadLetter
from schemas.json_schema import input_schema, output_schema
from schemas.streams import DATA_FIELD, Streams

API_VERSION = "2.0.0"  # 2: inputs are received, with the envelope and partitions described
RECEIVE, SEND = "receive", "send"
SCHEMAS = "#/components/schemas/"


@dataclass(frozen=True)
class StreamContract:
    """One logical stream: its key in the document, the one event type it carries, whether
    Guidepost receives it from upstream or sends it, and what it is for."""

    key: str
    address: str
    event_type: type[BaseModel]
    action: str
    description: str


def stream_contracts(streams: Streams) -> list[StreamContract]:
    return [
        StreamContract(
            "results", streams.results, ResultsPublished, RECEIVE, "A company's published results."
        ),
        StreamContract(
            "metrics", streams.metrics, MetricReported, RECEIVE, "Metrics at any frequency."
        ),
        StreamContract(
            "guidance", streams.guidance, GuidanceIssued, RECEIVE, "Guidance as stated."
        ),
        StreamContract(
            "history", streams.history, HistoryUpdated, SEND, "Ingest → forecast, guidance."
        ),
        StreamContract(
            "forecasts", streams.forecasts, ForecastUpdated, SEND, "Predictive distributions."
        ),
        StreamContract("trends", streams.trends, TrendUpdated, SEND, "Delinquency trends."),
        StreamContract(
            "signals", streams.signals, AlertSignal, SEND, "Workers → alerts: conditions."
        ),
        StreamContract(
            "alerts", streams.alerts, Alert, SEND, "Alerts (one consumer group per subscriber)."
        ),
        StreamContract(
            "deadLetters", streams.dead_letters, DeadLetter, SEND, "Entries no worker handled."
        ),
    ]


def json_schemas() -> dict[str, dict[str, Any]]:
    """Input events as the service accepts them; the others as Guidepost writes them."""
    models: list[type[BaseModel]] = [*ALL_EVENTS, DeadLetter]
    inputs = set(INPUT_EVENTS.values())
    return {
        model.__name__: input_schema(model) if model in inputs else output_schema(model)
        for model in models
    }


PARTITIONING = (
    "With GUIDEPOST_PARTITIONS=N above 1 this stream is split into N streams `{address}:p<n>`, "
    "n = CRC-32 of the company (UTF-8) modulo N, so that one company's events keep their order."
)
INPUT_PARTITIONING = (
    "A producer may write to the partition itself or keep writing to `{address}`: the ingest "
    "workers read that stream too (the same group), so no entry is left unread."
)


def asyncapi_document(streams: Streams | None = None) -> dict[str, Any]:
    streams = streams or Streams()
    schemas = _component_schemas(json_schemas())
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for contract in stream_contracts(streams):
        name = contract.event_type.__name__
        messages[name] = _message(contract)
        for key, channel in _channels(contract, streams).items():
            channels[key] = channel
            operations[f"{contract.action}{key[0].upper()}{key[1:]}"] = {
                "action": contract.action,
                "channel": {"$ref": f"#/channels/{key}"},
                "messages": [{"$ref": f"#/channels/{key}/messages/{name}"}],
                "summary": _operation_summary(contract),
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Guidepost",
            "version": API_VERSION,
            "description": (
                "Event-driven forecasts of company results against their guidance. Every stream "
                f"entry holds one field, `{DATA_FIELD}`, whose value is the event as JSON."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "redis": {
                "host": "localhost:6379",
                "protocol": "redis",
                "description": "Redis Streams (XADD to send, XREADGROUP to receive).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def _operation_summary(contract: StreamContract) -> str:
    if contract.action == RECEIVE:
        return f"Guidepost receives {contract.event_type.__name__} from upstream producers."
    return f"Guidepost sends {contract.event_type.__name__}."


def _channels(contract: StreamContract, streams: Streams) -> dict[str, Any]:
    """The stream under its own name and, for a company-keyed stream, its partitions."""
    name = contract.event_type.__name__
    message = {name: {"$ref": f"#/components/messages/{name}"}}
    found: dict[str, dict[str, Any]] = {
        contract.key: {
            "address": contract.address,
            "title": contract.address,
            "description": contract.description,
            "messages": message,
        }
    }
    if contract.address not in streams.partitioned:
        return found
    note = PARTITIONING.format(address=contract.address)
    if contract.action == RECEIVE:
        note += " " + INPUT_PARTITIONING.format(address=contract.address)
    found[contract.key]["description"] += " " + note
    found[f"{contract.key}Partition"] = {
        "address": contract.address + ":p{partition}",
        "title": contract.address + ":p<n>",
        "description": f"One partition of {contract.address}. " + note,
        "parameters": {
            "partition": {
                "description": "0 to GUIDEPOST_PARTITIONS - 1: CRC-32 of the company (UTF-8) "
                "modulo the number of partitions.",
                "examples": ["0", "3"],
            }
        },
        "messages": message,
    }
    return found


def _message(contract: StreamContract) -> dict[str, Any]:
    name = contract.event_type.__name__
    return {
        "name": name,
        "title": name,
        "summary": (contract.event_type.__doc__ or name).strip().splitlines()[0],
        "contentType": "application/json",
        "payload": {
            "type": "object",
            "description": f"The stream entry's fields: `{DATA_FIELD}` holds the event as JSON "
            "(UTF-8); a consumer ignores any other field.",
            "required": [DATA_FIELD],
            "properties": {
                DATA_FIELD: {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": SCHEMAS + name},
                    "description": f"The {name} event, serialized as JSON.",
                }
            },
        },
    }


def _component_schemas(models: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each event's schema, its `$defs` hoisted beside it (a definition two events share
    under one name with different content is kept under both events' names)."""
    found: dict[str, Any] = {}
    for name, schema in models.items():
        schema = copy.deepcopy(schema)
        definitions = schema.pop("$defs", {})
        renamed = {
            key: key if found.get(key, definition) == definition else f"{name}{key}"
            for key, definition in definitions.items()
        }
        for key, definition in definitions.items():
            found[renamed[key]] = _relinked(definition, renamed)
        found[name] = _relinked(schema, renamed)
    return found


def _relinked(node: Any, renamed: dict[str, str]) -> Any:
    """`#/$defs/X` references as references to the document's component schemas."""
    if isinstance(node, list):
        return [_relinked(item, renamed) for item in node]
    if not isinstance(node, dict):
        return node
    relinked = {key: _relinked(value, renamed) for key, value in node.items()}
    reference = relinked.get("$ref")
    if isinstance(reference, str) and reference.startswith("#/$defs/"):
        relinked["$ref"] = SCHEMAS + renamed[reference.removeprefix("#/$defs/")]
    return relinked


def export(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        written.append(_write(directory / f"{name}.schema.json", schema))
    written.append(_write(directory / "asyncapi.json", asyncapi_document()))
    return written


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
