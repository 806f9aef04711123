"""A small JSON Schema validator: the keywords /openapi.json uses, and no more.

No JSON Schema library is a dependency of the project, and the API's schemas
keep to a small part of the standard (2020-12, as OpenAPI 3.1 takes it).
``unknown_keywords`` finds any keyword outside that part, so that a schema
using one fails the spec's test instead of being checked by halves.

``strict``: an object schema that lists its ``properties`` and says nothing
of ``additionalProperties`` takes no other field. The spec leaves such
objects open, as the protocol promises clients; the tests use ``strict`` to
hold the server to describing every field it sends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

Schema = Mapping[str, Any]

ANNOTATIONS = frozenset({"description", "title", "default", "examples", "format", "deprecated"})
CHECKED = frozenset(
    {
        "$ref",
        "type",
        "enum",
        "const",
        "properties",
        "required",
        "additionalProperties",
        "minProperties",
        "items",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "allOf",
        "anyOf",
        "oneOf",
    }
)
TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def is_type(value: object, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, TYPES[name])


def subschemas(schema: Schema) -> Iterator[Schema]:
    """The schemas directly inside ``schema``."""
    yield from schema.get("properties", {}).values()
    for keyword in ("items", "additionalProperties"):
        if isinstance(schema.get(keyword), Mapping):
            yield schema[keyword]
    for keyword in ("allOf", "anyOf", "oneOf"):
        yield from schema.get(keyword, ())


def unknown_keywords(schema: Schema) -> set[str]:
    """Keywords in ``schema`` or below that this validator neither checks nor ignores."""
    found = set(schema) - CHECKED - ANNOTATIONS
    for inner in subschemas(schema):
        found |= unknown_keywords(inner)
    return found


class Validator:
    """Validates documents against schemas whose ``$ref``s point into ``root``."""

    def __init__(self, root: Mapping[str, Any], *, strict: bool = False) -> None:
        self.root = root
        self.strict = strict

    def resolve(self, reference: str) -> Schema:
        if not reference.startswith("#/"):
            raise ValueError(f"only local references are followed: {reference}")
        found: Any = self.root
        for part in reference[2:].split("/"):
            found = found[part.replace("~1", "/").replace("~0", "~")]
        return dict(found)

    def errors(self, value: Any, schema: Schema, where: str = "") -> list[str]:
        """Every way ``value`` breaks ``schema``, each with its JSON pointer."""
        at = where or "/"
        if "$ref" in schema:
            return self.errors(value, self.resolve(schema["$ref"]), where)
        problems: list[str] = []
        kinds = schema.get("type")
        if kinds is not None:
            names = [kinds] if isinstance(kinds, str) else list(kinds)
            if not any(is_type(value, name) for name in names):
                return [f"{at}: {value!r:.80} is not {' or '.join(names)}"]
        if "const" in schema and not same(value, schema["const"]):
            problems.append(f"{at}: {value!r:.80} is not {schema['const']!r}")
        if "enum" in schema and not any(same(value, option) for option in schema["enum"]):
            problems.append(f"{at}: {value!r:.80} is not one of {schema['enum']}")
        problems += self._combined(value, schema, where)
        if isinstance(value, dict):
            problems += self._object(value, schema, where)
        elif isinstance(value, list):
            problems += self._array(value, schema, where)
        elif isinstance(value, str):
            problems += self._string(value, schema, at)
        elif is_type(value, "number"):
            problems += self._number(value, schema, at)
        return problems

    def _combined(self, value: Any, schema: Schema, where: str) -> list[str]:
        problems: list[str] = []
        for inner in schema.get("allOf", ()):
            problems += self.errors(value, inner, where)
        if "anyOf" in schema:
            branches = [self.errors(value, inner, where) for inner in schema["anyOf"]]
            if all(branches):
                problems.append(f"{where or '/'}: matches none of anyOf: {branches}")
        if "oneOf" in schema:
            matching = [inner for inner in schema["oneOf"] if not self.errors(value, inner, where)]
            if len(matching) != 1:
                problems.append(f"{where or '/'}: matches {len(matching)} of oneOf, not 1")
        return problems

    def _object(self, value: dict[str, Any], schema: Schema, where: str) -> list[str]:
        problems = [
            f"{where or '/'}: {name!r} is missing"
            for name in schema.get("required", ())
            if name not in value
        ]
        if len(value) < schema.get("minProperties", 0):
            problems.append(f"{where or '/'}: fewer than {schema['minProperties']} fields")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if extra is None and self.strict and "properties" in schema:
            extra = False
        for name, item in value.items():
            if name in properties:
                problems += self.errors(item, properties[name], f"{where}/{name}")
            elif extra is False:
                problems.append(f"{where or '/'}: {name!r} is not described")
            elif isinstance(extra, Mapping):
                problems += self.errors(item, extra, f"{where}/{name}")
        return problems

    def _array(self, value: list[Any], schema: Schema, where: str) -> list[str]:
        problems = []
        if len(value) < schema.get("minItems", 0):
            problems.append(f"{where or '/'}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            problems.append(f"{where or '/'}: more than {schema['maxItems']} items")
        if "items" in schema:
            for index, item in enumerate(value):
                problems += self.errors(item, schema["items"], f"{where}/{index}")
        return problems

    @staticmethod
    def _string(value: str, schema: Schema, at: str) -> list[str]:
        problems = []
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{at}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{at}: longer than {schema['maxLength']}")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            problems.append(f"{at}: {value!r:.80} does not match {schema['pattern']}")
        return problems

    @staticmethod
    def _number(value: float, schema: Schema, at: str) -> list[str]:
        problems = []
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{at}: {value} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{at}: {value} is above {schema['maximum']}")
        return problems


def same(value: object, expected: object) -> bool:
    """JSON equality: ``True`` is not ``1``, and ``1`` is ``1.0``."""
    if isinstance(value, bool) or isinstance(expected, bool):
        return type(value) is type(expected) and value == expected
    return value == expected
