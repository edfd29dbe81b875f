"""Is a new schema of an event still readable by consumers of its released major version?

Within a major version only additive, optional changes are allowed (SPEC 4):
every released property stays, with the same type; required stays required; nothing
new becomes required; an enum may only grow. Anything else needs a new major routing key.
"""

from __future__ import annotations

from typing import Any


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root["$defs"][ref.removeprefix("#/$defs/")], root)
    return schema


def _types(schema: dict[str, Any], root: dict[str, Any]) -> set[str]:
    schema = _resolve(schema, root)
    if "anyOf" in schema:
        return set().union(*(_types(s, root) for s in schema["anyOf"]))
    if "type" in schema:
        t = schema["type"]
        found = set(t) if isinstance(t, list) else {t}
        if "format" in schema:
            found = {f"{x}:{schema['format']}" for x in found}
        return found
    if "const" in schema:
        return {f"const:{schema['const']}"}
    if "enum" in schema:
        return {"enum"}
    return {"any"}


def breaking_changes(
    old: dict[str, Any],
    new: dict[str, Any],
    path: str = "",
    old_root: dict[str, Any] | None = None,
    new_root: dict[str, Any] | None = None,
) -> list[str]:
    """What in `new` breaks a consumer written against `old`; empty when compatible."""
    old_root = old_root or old
    new_root = new_root or new
    old = _resolve(old, old_root)
    new = _resolve(new, new_root)
    problems: list[str] = []
    where = path or "(root)"

    old_types, new_types = _types(old, old_root), _types(new, new_root)
    if not old_types <= new_types and "any" not in new_types:
        problems.append(f"{where}: type changed from {sorted(old_types)} to {sorted(new_types)}")
    if "enum" in old and "enum" in new and not set(old["enum"]) <= set(new["enum"]):
        gone = sorted(set(old["enum"]) - set(new["enum"]))
        problems.append(f"{where}: enum values removed: {gone}")

    old_props = old.get("properties", {})
    new_props = new.get("properties", {})
    old_req, new_req = set(old.get("required", [])), set(new.get("required", []))
    for name in sorted(old_props):
        child = f"{path}.{name}" if path else name
        if name not in new_props:
            problems.append(f"{child}: removed")
            continue
        problems += breaking_changes(old_props[name], new_props[name], child, old_root, new_root)
    for name in sorted(old_req - new_req):
        problems.append(f"{path + '.' if path else ''}{name}: was required, now optional")
    for name in sorted(new_req - old_req):
        problems.append(f"{path + '.' if path else ''}{name}: newly required")

    if "items" in old and "items" in new:
        problems += breaking_changes(old["items"], new["items"], f"{path}[]", old_root, new_root)
    for key in ("anyOf",):
        if key in old and key in new:
            for o in old[key]:
                o_res = _resolve(o, old_root)
                if "properties" in o_res:
                    matches = [n for n in new[key] if "properties" in _resolve(n, new_root)]
                    if matches:
                        problems += breaking_changes(o, matches[0], path, old_root, new_root)
    return problems
