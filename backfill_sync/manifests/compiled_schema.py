"""The manifest JSON Schema compiled once into a plain yes/no check; jsonschema explains any "no".

jsonschema walks the schema anew for every value (about 0.14 ms per backfill: most of validate's time on
a large repository). Nearly every manifest is valid, and for those this check answers the same yes in a
fraction of that; a "no", or an instance it cannot judge exactly, goes to jsonschema, which finds every
problem and words it. The check knows only the keywords the schema uses, each as jsonschema reads it
(with integers strict, as schema.py has it); a schema using another keyword does not compile, and then
jsonschema checks everything (tests keep the shipped schema compilable and the two in agreement).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

Check = Callable[[Any], bool]

# Keywords that only describe, or that another keyword reads (then/else by if; $defs through $ref).
_IGNORED = frozenset(
    {"$schema", "$id", "$comment", "$defs", "title", "description", "examples", "default", "errorMessage"}
    | {"then", "else"}
)
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "integer": lambda value: isinstance(value, int) and not isinstance(value, bool),
    "number": lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
}


class UnsupportedSchema(Exception):
    """The schema uses something this compiler does not know; jsonschema must check every instance."""


class _Undecided(Exception):
    """This instance needs jsonschema's judgement (values beyond the plain JSON kinds, say)."""


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """A check that says True only where jsonschema finds no error (and False where unsure).

    Raises UnsupportedSchema for a schema with keywords or references it does not know.
    """
    check = _Compiler(schema).compile(schema)

    def is_valid(instance: Any) -> bool:
        try:
            return check(instance)
        except _Undecided:
            return False

    return is_valid


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, Mapping):
            raise UnsupportedSchema(f"a schema must be an object or a boolean, not {schema!r}")
        return _every(
            [self._keyword(name, value, schema) for name, value in schema.items() if name not in _IGNORED]
        )

    def _keyword(self, name: str, value: Any, schema: Mapping[str, Any]) -> Check:
        build = _KEYWORDS.get(name)
        if build is None:
            raise UnsupportedSchema(f"keyword {name!r}")
        return build(self, value, schema)

    def _ref(self, ref: str, _schema: Mapping[str, Any]) -> Check:
        if ref not in self.refs:
            self.refs[ref] = _unresolved  # a reference back to itself would recurse: not supported
            self.refs[ref] = self.compile(self._resolve(ref))
        target = self.refs[ref]
        if target is _unresolved:
            raise UnsupportedSchema(f"recursive $ref {ref!r}")
        return target

    def _resolve(self, ref: str) -> Any:
        if not ref.startswith("#"):
            raise UnsupportedSchema(f"$ref {ref!r} outside this schema")
        found: Any = self.root
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(found, Mapping) or key not in found:
                raise UnsupportedSchema(f"$ref {ref!r} does not resolve")
            found = found[key]
        return found

    def _type(self, expected: str | list[str], _schema: Mapping[str, Any]) -> Check:
        names = [expected] if isinstance(expected, str) else expected
        if any(name not in _TYPES for name in names):
            raise UnsupportedSchema(f"type {expected!r}")
        if len(names) == 1:
            return _TYPES[names[0]]
        tests = [_TYPES[name] for name in names]
        return lambda instance: any(test(instance) for test in tests)

    def _enum(self, allowed: list[Any], _schema: Mapping[str, Any]) -> Check:
        if not all(isinstance(member, str) for member in allowed):
            raise UnsupportedSchema("enum members other than strings")
        members = frozenset(allowed)

        def check(instance: Any) -> bool:
            if isinstance(instance, str):
                return instance in members
            _plain_json(instance)
            return False  # a string equals nothing else in jsonschema's eyes

        return check

    def _const(self, value: Any, schema: Mapping[str, Any]) -> Check:
        return self._enum([value], schema)

    def _pattern(self, pattern: str, _schema: Mapping[str, Any]) -> Check:
        search = re.compile(pattern).search
        return lambda instance: not isinstance(instance, str) or search(instance) is not None

    def _min_length(self, length: int, _schema: Mapping[str, Any]) -> Check:
        return lambda instance: not isinstance(instance, str) or len(instance) >= length

    def _max_length(self, length: int, _schema: Mapping[str, Any]) -> Check:
        return lambda instance: not isinstance(instance, str) or len(instance) <= length

    def _minimum(self, bound: float, _schema: Mapping[str, Any]) -> Check:
        number = _TYPES["number"]
        return lambda instance: not number(instance) or instance >= bound

    def _maximum(self, bound: float, _schema: Mapping[str, Any]) -> Check:
        number = _TYPES["number"]
        return lambda instance: not number(instance) or instance <= bound

    def _required(self, names: list[str], _schema: Mapping[str, Any]) -> Check:
        return lambda instance: not isinstance(instance, dict) or all(name in instance for name in names)

    def _properties(self, properties: Mapping[str, Any], _schema: Mapping[str, Any]) -> Check:
        checks = {name: self.compile(subschema) for name, subschema in properties.items()}

        def check(instance: Any) -> bool:
            if not isinstance(instance, dict):
                return True
            for name, value in instance.items():
                inner = checks.get(name)
                if inner is not None and not inner(value):
                    return False
            return True

        return check

    def _additional_properties(self, extra: Any, schema: Mapping[str, Any]) -> Check:
        if "patternProperties" in schema:
            raise UnsupportedSchema("patternProperties")
        known = frozenset(schema.get("properties", {}))
        inner = self.compile(extra)

        def check(instance: Any) -> bool:
            if isinstance(instance, dict):
                for name, value in instance.items():
                    if name not in known and not inner(value):
                        return False
            return True

        return check

    def _items(self, items: Any, schema: Mapping[str, Any]) -> Check:
        if "prefixItems" in schema:
            raise UnsupportedSchema("prefixItems")
        inner = self.compile(items)

        def check(instance: Any) -> bool:
            if isinstance(instance, list):
                for item in instance:
                    if not inner(item):
                        return False
            return True

        return check

    def _unique_items(self, unique: bool, _schema: Mapping[str, Any]) -> Check:
        def check(instance: Any) -> bool:
            if not unique or not isinstance(instance, list):
                return True
            if not all(isinstance(item, str) for item in instance):
                raise _Undecided  # jsonschema's equality (1 == 1.0, True != 1) is its own
            return len(set(instance)) == len(instance)

        return check

    def _if(self, condition: Any, schema: Mapping[str, Any]) -> Check:
        test = self.compile(condition)
        then = self.compile(schema.get("then", True))
        otherwise = self.compile(schema.get("else", True))
        return lambda instance: then(instance) if test(instance) else otherwise(instance)

    def _not(self, negated: Any, _schema: Mapping[str, Any]) -> Check:
        inner = self.compile(negated)
        return lambda instance: not inner(instance)

    def _all_of(self, schemas: list[Any], _schema: Mapping[str, Any]) -> Check:
        return _every([self.compile(subschema) for subschema in schemas])


_KEYWORDS: dict[str, Callable[[_Compiler, Any, Mapping[str, Any]], Check]] = {
    "$ref": _Compiler._ref,
    "type": _Compiler._type,
    "enum": _Compiler._enum,
    "const": _Compiler._const,
    "pattern": _Compiler._pattern,
    "minLength": _Compiler._min_length,
    "maxLength": _Compiler._max_length,
    "minimum": _Compiler._minimum,
    "maximum": _Compiler._maximum,
    "required": _Compiler._required,
    "properties": _Compiler._properties,
    "additionalProperties": _Compiler._additional_properties,
    "items": _Compiler._items,
    "uniqueItems": _Compiler._unique_items,
    "if": _Compiler._if,
    "not": _Compiler._not,
    "allOf": _Compiler._all_of,
}


def _every(checks: list[Check]) -> Check:
    if len(checks) == 1:
        return checks[0]

    def check(instance: Any) -> bool:
        for each in checks:  # noqa: SIM110 (a loop: all() over a generator is slower, and this runs most)
            if not each(instance):
                return False
        return True

    return check


def _always(_instance: Any) -> bool:
    return True


def _never(_instance: Any) -> bool:
    return False


def _unresolved(_instance: Any) -> bool:
    raise _Undecided


def _plain_json(value: Any) -> None:
    if not isinstance(value, dict | list | str | int | float | bool) and value is not None:
        raise _Undecided
