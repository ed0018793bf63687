"""Checking a result file's JSON against the dataclasses that define it, so a bad file fails
on load with one line naming the file and the field, not later as a KeyError in a report."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any


class ResultFileError(ValueError):
    """A result file that does not match the schema; the message names the file and the field."""


def check_fields(data: object, cls: type, path: Path, where: str = "", optional: frozenset[str] = frozenset()) -> None:
    """Raise `ResultFileError` unless `data` is a dict holding exactly the fields of the
    dataclass `cls`, each of its annotated type (nested dataclasses and dicts checked too).
    Fields named in `optional` may be absent (fields added since files of the same schema
    version were written; the dataclass's default stands in).

    >>> @dataclasses.dataclass
    ... class Point:
    ...     x: int
    >>> check_fields({"x": "1"}, Point, Path("p.json"))
    Traceback (most recent call last):
    bench.result_schema.ResultFileError: p.json: field 'x' must be int, got str '1'
    """
    if not isinstance(data, dict):
        raise ResultFileError(f"{path}: {_name(where) or 'the file'} must be an object, got {_shown(data)}")
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        name = f"{where}.{field.name}" if where else field.name
        if field.name not in data:
            if field.name in optional:
                continue
            raise ResultFileError(f"{path}: field {name!r} is missing")
        check_value(data[field.name], hints[field.name], path, name)
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise ResultFileError(f"{path}: field {name!r} is not part of the schema")


def check_value(value: object, hint: Any, path: Path, name: str) -> None:
    """Raise `ResultFileError` unless `value` (as JSON gives it) fits the type `hint`."""
    if hint is Any:
        return
    if dataclasses.is_dataclass(hint):
        check_fields(value, hint, path, name)
        return
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        if not any(_fits(value, arg) for arg in args):
            _fail(path, name, " or ".join(_type_name(a) for a in args), value)
        return
    if origin is dict:
        if not isinstance(value, dict):
            _fail(path, name, "an object", value)
        for key, item in value.items():
            check_value(item, args[1] if args else Any, path, f"{name}[{key!r}]")
        return
    if origin in (list, tuple):
        if not isinstance(value, list):  # JSON has no tuples
            _fail(path, name, "a list", value)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                _fail(path, name, f"a list of {len(args)}", value)
            for i, (item, arg) in enumerate(zip(value, args, strict=True)):
                check_value(item, arg, path, f"{name}[{i}]")
        else:
            for i, item in enumerate(value):
                check_value(item, args[0] if args else Any, path, f"{name}[{i}]")
        return
    if not _fits(value, hint):
        _fail(path, name, _type_name(hint), value)


def _fits(value: object, hint: Any) -> bool:
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:  # JSON writes 1.0 as 1.0, but hand-edited files may say 1
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True


def _fail(path: Path, name: str, expected: str, value: object) -> typing.NoReturn:
    raise ResultFileError(f"{path}: field {name!r} must be {expected}, got {_shown(value)}")


def _type_name(hint: Any) -> str:
    return "null" if hint is type(None) else getattr(hint, "__name__", str(hint))


def _shown(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


def _name(where: str) -> str:
    return f"field {where!r}" if where else ""
