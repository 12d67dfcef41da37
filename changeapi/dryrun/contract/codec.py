"""The report's one serialisation: `to_json` for storing and serving, `report_from_json` for reading.

Both walk the dataclasses, so a field added to the contract is written and read with no code
here. Reading checks every value's type, fills the keys that reports stored earlier lack with
what readers always assumed, and refuses a report of a version it does not know.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Mapping

from changeapi.dryrun.contract.fields import OMIT, JsonValue, Omit
from changeapi.dryrun.contract.report import REPORT_VERSION, Report


class ReportFormatError(ValueError):
    """Stored data that is not a report this version can read."""


def to_json(report: Report) -> dict[str, JsonValue]:
    """The report as JSON: the keys it has always had, plus `report_version`."""
    return _encode_dataclass(report)


def report_from_json(data: Mapping[str, object]) -> Report:
    """The report stored as `data`, of this version or an earlier one."""
    version = data.get("report_version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= REPORT_VERSION:
        raise ReportFormatError(f"report_version {version!r} is not one this service reads (1 to {REPORT_VERSION})")
    if version == 1:
        data = _upgrade_from_v1(data)
    if version <= 2:
        data = _upgrade_from_v2(data)
    decoded = _decode(Report, {**data, "report_version": REPORT_VERSION}, "report")
    assert isinstance(decoded, Report)
    return decoded


def _upgrade_from_v1(data: Mapping[str, object]) -> dict[str, object]:
    """Version 1 reports from before production estimates: a span's or table's estimated
    times are its measured ones, as the readers of those reports took them to be."""
    upgraded = dict(data)
    spans = data.get("lock_spans")
    if isinstance(spans, list):
        upgraded["lock_spans"] = [
            {
                "estimated_from_ms": span.get("from_ms"),
                "estimated_to_ms": span.get("to_ms"),
                "estimated_held_ms": span.get("held_ms"),
                **span,
            }
            if isinstance(span, dict)
            else span
            for span in spans
        ]
    tables = data.get("tables")
    if isinstance(tables, list):
        upgraded["tables"] = [
            {
                "reads_blocked_estimated_ms": table.get("reads_blocked_ms"),
                "writes_blocked_estimated_ms": table.get("writes_blocked_ms"),
                **table,
            }
            if isinstance(table, dict)
            else table
            for table in tables
        ]
    return upgraded


def _upgrade_from_v2(data: Mapping[str, object]) -> dict[str, object]:
    """Reports before version 3 listed on each statement every lock its session held: keep the
    ones it acquired. Their `held_locks` and the flag are not read (no field has those names);
    they have no `transactions`, which readers then derive as empty."""
    upgraded = dict(data)
    statements = data.get("statements")
    if isinstance(statements, list):
        upgraded["statements"] = [
            {
                **statement,
                "locks": [lock for lock in locks if not isinstance(lock, dict) or lock.get("acquired_by_statement", True)],
            }
            if isinstance(statement, dict) and isinstance(locks := statement.get("locks"), list)
            else statement
            for statement in statements
        ]
    return upgraded


def _encode(value: object) -> JsonValue:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_dataclass(value)
    if isinstance(value, tuple | list):
        return [_encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"{type(value).__name__} is not part of the report contract")


def _encode_dataclass(value: object) -> dict[str, JsonValue]:
    encoded: dict[str, JsonValue] = {}
    for spec in dataclasses.fields(value):  # type: ignore[arg-type]  # a dataclass instance, checked by the caller
        item = getattr(value, spec.name)
        omit: Omit | None = spec.metadata.get(OMIT)
        if omit is not None and omit(value, item):
            continue
        encoded[spec.name] = _encode(item)
    return encoded


@functools.cache
def _hints(kind: type) -> dict[str, object]:
    return dict(typing.get_type_hints(kind))


def _required(kind: type) -> set[str]:
    return {
        spec.name
        for spec in dataclasses.fields(kind)
        if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
    }


def _decode(kind: object, value: object, where: str) -> object:
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, value, where)
    origin = typing.get_origin(kind)
    if origin is types.UnionType or origin is typing.Union:
        return _decode_union(typing.get_args(kind), value, where)
    if origin is tuple:
        item_kind = typing.get_args(kind)[0]
        if not isinstance(value, list | tuple):
            raise ReportFormatError(f"{where} is not a list")
        return tuple(_decode(item_kind, item, f"{where}[{i}]") for i, item in enumerate(value))
    if origin is Mapping:
        item_kind = typing.get_args(kind)[1]
        if not isinstance(value, Mapping):
            raise ReportFormatError(f"{where} is not an object")
        return {str(key): _decode(item_kind, item, f"{where}.{key}") for key, item in value.items()}
    return _decode_scalar(kind, value, where)


def _decode_scalar(kind: object, value: object, where: str) -> object:
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if kind is str and isinstance(value, str):
        return value
    raise ReportFormatError(f"{where} is {type(value).__name__}, not {getattr(kind, '__name__', kind)}")


def _decode_union(options: tuple[object, ...], value: object, where: str) -> object:
    if value is None:
        if type(None) in options:
            return None
        raise ReportFormatError(f"{where} is null")
    candidates = [option for option in options if option is not type(None)]
    if len(candidates) == 1:
        return _decode(candidates[0], value, where)
    # A union of parts (a plan or its failure): the first whose required keys are all there.
    for option in candidates:
        if isinstance(option, type) and isinstance(value, Mapping) and _required(option) <= value.keys():
            return _decode(option, value, where)
    raise ReportFormatError(f"{where} matches none of {', '.join(getattr(o, '__name__', str(o)) for o in candidates)}")


def _decode_dataclass(kind: type, value: object, where: str) -> object:
    if not isinstance(value, Mapping):
        raise ReportFormatError(f"{where} is not an object")
    hints = _hints(kind)
    arguments: dict[str, object] = {}
    for spec in dataclasses.fields(kind):
        if spec.name in value:
            arguments[spec.name] = _decode(hints[spec.name], value[spec.name], f"{where}.{spec.name}")
        elif spec.name in _required(kind):
            raise ReportFormatError(f"{where}.{spec.name} is missing")
    return kind(**arguments)
