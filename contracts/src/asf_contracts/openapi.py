"""The HTTP contracts: each service's OpenAPI document, checked in beside the AsyncAPI one,
and whether a new document still serves a client written against the released one.

`contracts/openapi/<service>.json` is what the service publishes at `/openapi.json` today
(generated from the apps: `make openapi`, i.e. `python -m asf_testing.openapi`; a test fails
when it has drifted). `contracts/openapi/released/<service>.json` is the published contract
(frozen with `--release` when it does not exist yet): `breaking_changes(released, current)`
must stay empty, as `compat.breaking_changes` does for events.

What breaks a client:
- an operation (path and method) or a success status it had is gone;
- what it sends is refused: a new required parameter or body field, one that is gone, a type
  changed, a value no longer allowed (an enum that lost values, a tighter length, range or
  pattern), a body newly required;
- what it reads is not there: a response field gone or no longer required, a type changed.
Adding operations, optional inputs, response fields and error statuses does not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACTS_DIR = Path(__file__).resolve().parents[2]
OPENAPI_DIR = CONTRACTS_DIR / "openapi"
RELEASED_OPENAPI_DIR = OPENAPI_DIR / "released"
SERVICES = ("registry", "casework", "notifications")
METHODS = ("get", "put", "post", "delete", "patch")

_TIGHTER = {"maxLength": "max", "maxItems": "max", "maximum": "max", "exclusiveMaximum": "max",
            "minLength": "min", "minItems": "min", "minimum": "min", "exclusiveMinimum": "min"}


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    while isinstance(schema, dict) and isinstance(schema.get("$ref"), str):
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = root.get("components", {}).get("schemas", {}).get(name, {})
    return schema if isinstance(schema, dict) else {}


def _types(schema: dict[str, Any], root: dict[str, Any]) -> set[str]:
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return set().union(*(_types(s, root) for s in schema[key]))
    if "type" in schema:
        t = schema["type"]
        return set(t) if isinstance(t, list) else {t}
    if "const" in schema:
        return {type(schema["const"]).__name__}
    return {"any"}


def _values(schema: dict[str, Any], root: dict[str, Any]) -> set[Any] | None:
    """The values an enum allows (`None`: not an enum)."""
    schema = _resolve(schema, root)
    if "enum" in schema:
        return {json.dumps(v) for v in schema["enum"]}
    for key in ("anyOf", "oneOf"):
        if key in schema:
            parts = [_values(s, root) for s in schema[key]]
            if any(p is None and _types(s, root) != {"null"}
                   for p, s in zip(parts, schema[key], strict=True)):
                return None
            return set().union(*(p for p in parts if p is not None))
    return None


def _branch(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """The object (or value) schema of `X | None`: what its constraints are on."""
    schema = _resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        real = [_resolve(s, root) for s in schema.get(key, []) if
                _resolve(s, root).get("type") != "null"]
        if len(real) == 1:
            return {**real[0], **{k: v for k, v in schema.items() if k != key}}
    return schema


def schema_changes(old: Any, new: Any, where: str, old_root: dict[str, Any],
                   new_root: dict[str, Any], *, sent: bool, depth: int = 0) -> list[str]:
    """What in `new` breaks a client of `old`: `sent` for what the client sends (it must
    still be accepted), otherwise for what it reads (it must still be there)."""
    if depth > 12:
        return []
    o, n = _branch(old, old_root), _branch(new, new_root)
    found: list[str] = []
    ot, nt = _types(o, old_root), _types(n, new_root)
    if sent and not ot <= nt and "any" not in nt:
        found.append(f"{where}: type changed from {sorted(ot)} to {sorted(nt)}")
    if not sent and not nt <= ot and "any" not in ot:
        found.append(f"{where}: type changed from {sorted(ot)} to {sorted(nt)}")
    if sent:
        ov, nv = _values(o, old_root), _values(n, new_root)
        if nv is not None and (ov is None or not ov <= nv):
            lost = sorted(ov - nv) if ov is not None else ["(any value)"]
            found.append(f"{where}: values no longer accepted: {lost}")
        for key, kind in _TIGHTER.items():
            if key in n and (key not in o or (n[key] < o[key] if kind == "max"
                                               else n[key] > o[key])):
                found.append(f"{where}: {key} tightened to {n[key]}")
        if "pattern" in n and n.get("pattern") != o.get("pattern"):
            found.append(f"{where}: pattern changed to {n['pattern']!r}")
    oprops, nprops = o.get("properties", {}), n.get("properties", {})
    oreq, nreq = set(o.get("required", [])), set(n.get("required", []))
    for name in sorted(oprops):
        child = f"{where}.{name}"
        if name not in nprops:
            if sent and n.get("additionalProperties") is not False:
                continue  # still accepted (and ignored)
            found.append(f"{child}: removed")
            continue
        found += schema_changes(oprops[name], nprops[name], child, old_root, new_root,
                                sent=sent, depth=depth + 1)
    if sent:
        found += [f"{where}.{name}: newly required" for name in sorted(nreq - oreq)]
    else:
        found += [f"{where}.{name}: no longer always there" for name in sorted(oreq - nreq)]
    if "items" in o and "items" in n:
        found += schema_changes(o["items"], n["items"], f"{where}[]", old_root, new_root,
                                sent=sent, depth=depth + 1)
    return found


def _json_schema(part: dict[str, Any]) -> dict[str, Any] | None:
    content = part.get("content", {})
    media = content.get("application/json") or next(iter(content.values()), None)
    return media.get("schema") if isinstance(media, dict) else None


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What in the document `new` breaks a client written against `old`; empty when none."""
    found: list[str] = []
    for path, item in sorted(old.get("paths", {}).items()):
        for method in METHODS:
            if method not in item:
                continue
            where = f"{method.upper()} {path}"
            new_op = new.get("paths", {}).get(path, {}).get(method)
            if new_op is None:
                found.append(f"{where}: removed")
                continue
            found += _operation_changes(item[method], new_op, where, old, new)
    return found


def _operation_changes(o: dict[str, Any], n: dict[str, Any], where: str,
                       old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    found: list[str] = []
    oparams = {(p["in"], p["name"].lower()): p for p in o.get("parameters", [])}
    nparams = {(p["in"], p["name"].lower()): p for p in n.get("parameters", [])}
    for key, p in sorted(oparams.items()):
        label = f"{where} {key[0]} {p['name']}"
        if key not in nparams:
            found.append(f"{label}: removed")
            continue
        if nparams[key].get("required") and not p.get("required"):
            found.append(f"{label}: newly required")
        found += schema_changes(p.get("schema", {}), nparams[key].get("schema", {}), label,
                                old, new, sent=True)
    for key, p in sorted(nparams.items()):
        if key not in oparams and p.get("required"):
            found.append(f"{where} {key[0]} {p['name']}: newly required")
    obody, nbody = o.get("requestBody"), n.get("requestBody")
    if obody is None and nbody is not None and nbody.get("required"):
        found.append(f"{where} body: newly required")
    if obody is not None:
        if nbody is None:
            found.append(f"{where} body: removed")
        else:
            os_, ns = _json_schema(obody), _json_schema(nbody)
            if os_ is not None and ns is not None:
                found += schema_changes(os_, ns, f"{where} body", old, new, sent=True)
    for status, response in sorted(o.get("responses", {}).items()):
        if not status.startswith("2"):
            continue
        label = f"{where} {status}"
        new_response = n.get("responses", {}).get(status)
        if new_response is None:
            found.append(f"{label}: removed")
            continue
        os_, ns = _json_schema(response), _json_schema(new_response)
        if os_ is not None and ns is not None:
            found += schema_changes(os_, ns, label, old, new, sent=False)
    return found
