"""JSON Schemas and the AsyncAPI document, generated from the models in this package.

`python -m asf_contracts.schemas` writes them into `contracts/schemas/` and
`contracts/asyncapi.json`; `--check` fails when the checked-in files have drifted.
`--release` also freezes each event's current schema in `contracts/released/`, the
baseline that `compat.py` holds later versions of the same major to.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, create_model

from asf_contracts.catalog import EVENTS, PRODUCERS
from asf_contracts.envelope import Envelope, routing_key
from asf_contracts.topology import EXCHANGE

CONTRACTS_DIR = Path(__file__).resolve().parents[2]
SCHEMA_DIR = CONTRACTS_DIR / "schemas"
RELEASED_DIR = CONTRACTS_DIR / "released"
ASYNCAPI_FILE = CONTRACTS_DIR / "asyncapi.json"


def event_schema(event_type: str, version: int, payload: type[BaseModel]) -> dict[str, Any]:
    """The whole message: the envelope with this event's payload in it."""
    model = create_model(
        f"{payload.__name__}Event", __base__=Envelope, payload=(payload, ...),
    )
    schema = model.model_json_schema(mode="serialization")
    schema["title"] = routing_key(event_type, version)
    schema["$id"] = f"urn:asf-samverkan:event:{routing_key(event_type, version)}"
    props = schema["properties"]
    props["event_type"] = {**props["event_type"], "const": event_type}
    props["event_version"] = {**props["event_version"], "const": version}
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    return {
        f"{routing_key(t, v)}.json": event_schema(t, v, model)
        for (t, v), model in sorted(EVENTS.items())
    }


def asyncapi() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for (event_type, version), model in sorted(EVENTS.items()):
        key = routing_key(event_type, version)
        name = key.replace(".", "_")
        messages[name] = {
            "name": key,
            "title": key,
            "summary": (model.__doc__ or "").strip().split("\n")[0] or key,
            "contentType": "application/json",
            "correlationId": {"location": "$message.header#/correlation_id"},
            "headers": {"type": "object", "properties": {
                "event_type": {"type": "string", "const": event_type},
                "event_version": {"type": "integer", "const": version},
                "traceparent": {"type": "string"},
            }},
            "payload": {"$ref": f"schemas/{key}.json"},
            "bindings": {"amqp": {"messageType": event_type, "bindingVersion": "0.3.0"}},
        }
        channels[name] = {
            "address": key,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
            "bindings": {"amqp": {
                "is": "routingKey",
                "exchange": {"name": EXCHANGE, "type": "topic", "durable": True,
                             "autoDelete": False, "vhost": "/"},
                "bindingVersion": "0.3.0",
            }},
        }
        operations[f"publish_{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"{PRODUCERS[event_type]} publishes {key}",
            "bindings": {"amqp": {"deliveryMode": 2, "mandatory": False,
                                  "bindingVersion": "0.3.0"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "ASF Samverkan events",
            "version": "1.0.0",
            "description": "Events on the `asf.events` topic exchange. Routing key "
            "`<service>.<aggregate>.<event>.v<major>`; message_id = event_id; persistent; "
            "participants appear only as UUIDs.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:5672", "protocol": "amqp"}},
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def expected_files() -> dict[Path, str]:
    files = {SCHEMA_DIR / name: dumps(schema) for name, schema in all_schemas().items()}
    files[ASYNCAPI_FILE] = dumps(asyncapi())
    return files


def drifted() -> list[Path]:
    """Checked-in files that differ from what the models generate, or are stale."""
    expected = expected_files()
    stale = [p for p in SCHEMA_DIR.glob("*.json") if p not in expected]
    return sorted(
        [p for p, text in expected.items()
         if not p.exists() or p.read_text(encoding="utf-8") != text] + stale
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when files have drifted")
    parser.add_argument("--release", action="store_true",
                        help="also freeze schemas of majors not yet released")
    args = parser.parse_args(argv)
    if args.check:
        bad = drifted()
        for p in bad:
            print(f"drifted: {p.relative_to(CONTRACTS_DIR)}", file=sys.stderr)
        return 1 if bad else 0
    SCHEMA_DIR.mkdir(exist_ok=True)
    for p in SCHEMA_DIR.glob("*.json"):
        p.unlink()
    for path, text in expected_files().items():
        path.write_text(text, encoding="utf-8")
    if args.release:
        RELEASED_DIR.mkdir(exist_ok=True)
        for name, schema in all_schemas().items():
            target = RELEASED_DIR / name
            if not target.exists():
                target.write_text(dumps(schema), encoding="utf-8")
                print(f"released {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
