"""Hypothesis strategies for the JSON Schema subset the OpenAPI document uses in its requests.

hypothesis-jsonschema would do this in general, but its last release (0.23.1) fails on every
object schema with current Hypothesis; the document's request schemas need far less.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from jsonschema import Draft202012Validator

MAX_TEXT = 40  # longer strings add time, not coverage
MAX_ITEMS = 3


def text() -> st.SearchStrategy[str]:
    """Any text: control characters, astral characters and lone surrogates included."""
    return st.text(st.one_of(st.characters(), st.characters(categories=["Cs"])), max_size=MAX_TEXT)


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that `schema` (every $ref already inlined) accepts."""
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return _values(schema).filter(validator.is_valid)


def _values(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "allOf" in schema:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            merged = _merge(merged, part)
        return _values(merged)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            base = {k: v for k, v in schema.items() if k != key}
            return st.one_of([_values(_merge(base, branch)) for branch in schema[key]])
    types = schema.get("type", ["null", "boolean", "integer", "string", "array", "object"])
    if isinstance(types, str):
        types = [types]
    return st.one_of([_typed(t, schema) for t in types])


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = {**a, **{k: v for k, v in b.items() if k not in ("properties", "required")}}
    merged["properties"] = {**a.get("properties", {}), **b.get("properties", {})}
    merged["required"] = sorted({*a.get("required", []), *b.get("required", [])})
    return merged


def _typed(kind: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if kind == "string":
        return _string(schema)
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        if kind == "integer":
            return st.integers(low, high)
        return st.floats(low, high, allow_nan=False, allow_infinity=False)
    if kind == "array":
        low = schema.get("minItems", 0)
        high = min(schema.get("maxItems", MAX_ITEMS), max(low, MAX_ITEMS))
        return st.lists(_values(schema.get("items", {})), min_size=low, max_size=high)
    if kind == "object":
        return _object(schema)
    return {"boolean": st.booleans(), "null": st.none()}[kind]


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), min(schema.get("maxLength", MAX_TEXT), MAX_TEXT)
    if schema.get("format") == "email":
        return st.emails().filter(lambda s: low <= len(s) <= schema.get("maxLength", 320))
    if "pattern" in schema:
        found = st.from_regex(_python_pattern(schema["pattern"]), fullmatch=False)
        return found.filter(lambda s: low <= len(s) <= schema.get("maxLength", len(s)))
    return st.text(min_size=low, max_size=max(low, high))


def _python_pattern(pattern: str) -> str:
    """An ECMA-262 pattern for `re`: there `$` ends the input, here it also matches before "\\n"."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        return pattern[:-1] + "\\Z"
    return pattern


@st.composite
def _object(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    body = {}
    for name, sub in properties.items():
        if name in required or draw(st.booleans()):
            body[name] = draw(_values(sub))
    if schema.get("additionalProperties", True) is not False and draw(st.booleans()):
        extra = draw(st.text(min_size=1, max_size=8).filter(lambda k: k not in properties))
        body[extra] = draw(st.none() | st.integers() | st.text(max_size=8))
    return body
