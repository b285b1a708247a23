"""The OpenAPI document as the tests use it: its operations, and response checks against it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_URI = "urn:mailpreflight:openapi"  # where $refs into the document resolve
_TRACEBACK = "Traceback (most recent call last)"


def load_bytes() -> bytes:
    """The document exactly as the package ships it."""
    return (resources.files("checker") / "data" / "openapi.json").read_bytes()


def _escape(token: str) -> str:
    """One JSON Pointer token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class Operation:
    """One documented (method, path template) and what the document says about it."""

    method: str  # upper case, as aiohttp names it
    template: str
    spec: dict[str, Any]
    parameters: tuple[dict[str, Any], ...]

    @property
    def pointer(self) -> str:
        """The JSON Pointer of the operation object inside the document."""
        return f"/paths/{_escape(self.template)}/{self.method.lower()}"


class Document:
    """The parsed document, its operations and a validator for each documented response."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        resource: Resource[Any] = DRAFT202012.create_resource(data)
        self._registry: Registry[Any] = Registry().with_resource(_URI, resource)

    @classmethod
    def load(cls) -> Document:
        """The shipped document."""
        return cls(json.loads(load_bytes()))

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        """`node`, or the object its local `$ref` points at."""
        while "$ref" in node:
            found: Any = self.data
            for token in node["$ref"].removeprefix("#/").split("/"):
                found = found[token.replace("~1", "/").replace("~0", "~")]
            node = found
        return node

    def inline(self, schema: Any) -> Any:
        """`schema` with every local `$ref` replaced by its target (for value generators)."""
        if isinstance(schema, list):
            return [self.inline(item) for item in schema]
        if not isinstance(schema, dict):
            return schema
        if "$ref" in schema:
            target = self.inline(self.resolve({"$ref": schema["$ref"]}))
            siblings = {k: self.inline(v) for k, v in schema.items() if k != "$ref"}
            return {"allOf": [target], **siblings} if siblings else target
        return {key: self.inline(value) for key, value in schema.items()}

    def operations(self) -> list[Operation]:
        """Every documented operation."""
        found = []
        for template, item in self.data["paths"].items():
            shared = [self.resolve(p) for p in item.get("parameters", [])]
            for method, spec in item.items():
                if method in HTTP_METHODS:
                    own = [self.resolve(p) for p in spec.get("parameters", [])]
                    found.append(Operation(method.upper(), template, spec, (*shared, *own)))
        return found

    def operation(self, method: str, template: str) -> Operation:
        """The operation documented for `method` on `template`; KeyError when there is none."""
        for op in self.operations():
            if (op.method, op.template) == (method.upper(), template):
                return op
        raise KeyError((method, template))

    def routes(self) -> set[tuple[str, str]]:
        """(METHOD, path template) of every documented operation."""
        return {(op.method, op.template) for op in self.operations()}

    def response_key(self, op: Operation, status: int) -> str | None:
        """The documented response for `status`: its own entry, else `default`, else None."""
        responses = op.spec["responses"]
        if str(status) in responses:
            return str(status)
        return "default" if "default" in responses else None

    def validator(self, pointer: str) -> Draft202012Validator:
        """A Draft 2020-12 validator for the schema at `pointer`, its $refs resolved."""
        return Draft202012Validator(
            {"$ref": f"{_URI}#{pointer}"},
            registry=self._registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )

    def check_response(
        self,
        op: Operation | None,
        status: int,
        content_type: str,
        body: bytes,
        *,
        explicit: bool = False,
    ) -> list[str]:
        """Why this response does not match the document (an empty list when it does).

        `op` None means a request no operation is documented for: it must be an error with the
        `Error` body. With `explicit`, the status must be listed by the operation itself.
        """
        text = body.decode("utf-8", errors="replace")
        problems = [f"a traceback in the body: {text[:200]!r}"] if _TRACEBACK in text else []
        if op is None:
            if status < 400:
                return [*problems, f"status {status} for an undocumented operation"]
            pointer = "/components/schemas/Error"
            media = "application/json"
        else:
            key = self.response_key(op, status)
            if key is None or (explicit and key == "default"):
                return [
                    *problems,
                    f"status {status} is not documented for {op.method} {op.template}",
                ]
            response = op.spec["responses"][key]
            content = response.get("content")
            if not content:
                return [*problems, *([f"a body with {status}: {text[:100]!r}"] if body else [])]
            media = content_type.partition(";")[0].strip().lower()
            if media not in content:
                return [*problems, f"media type {content_type!r} is not documented for {status}"]
            pointer = f"{op.pointer}/responses/{key}/content/{_escape(media)}/schema"
        if media != "application/json":
            return problems
        try:
            instance = json.loads(body)
        except ValueError:
            return [*problems, f"not JSON: {text[:100]!r}"]
        errors = sorted(self.validator(pointer).iter_errors(instance), key=lambda e: e.path)
        return problems + [f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors]
