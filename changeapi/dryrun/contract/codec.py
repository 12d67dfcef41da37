"""The report's one serialisation: `to_json` for storing and serving, `report_from_json` for reading.

Both walk the dataclasses, so a field added to the contract is written and read with no code
here. Reading checks every value's type, fills the keys that reports stored earlier lack with
what readers always assumed, and refuses a report of a version it does not know.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping

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


# Both directions work from a plan per type, made once: a report of a few hundred statements
# has tens of thousands of values, and looking up each one's dataclass fields and type hints
# again was most of the time it took to store and to serve a report.
_Encoder = Callable[[object], JsonValue]
_Decoder = Callable[[object], object]
_encoders: dict[type, _Encoder] = {}
_decoders: dict[object, _Decoder] = {}


class _Misfit(Exception):  # noqa: N818 - internal, always turned into a ReportFormatError
    """A stored value of the wrong shape. The containers it passes on the way out add their
    key to `path`, so the place is spelled only when there is an error."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path: list[str] = []

    def at(self, step: str) -> _Misfit:
        self.path.append(step)
        return self


def _encode(value: object) -> JsonValue:
    kind = type(value)
    encoder = _encoders.get(kind)
    if encoder is None:
        encoder = _encoders[kind] = _encoder_for(kind)
    return encoder(value)


def _encode_dataclass(value: object) -> dict[str, JsonValue]:
    return _encode(value)  # type: ignore[return-value]  # a dataclass encodes to an object


def _encoder_for(kind: type) -> _Encoder:
    if dataclasses.is_dataclass(kind):
        return _dataclass_encoder(kind)
    if issubclass(kind, tuple | list):
        return lambda value: [_encode(item) for item in value]  # type: ignore[attr-defined]
    if issubclass(kind, Mapping):
        return lambda value: {str(key): _encode(item) for key, item in value.items()}  # type: ignore[attr-defined]
    if kind is type(None) or issubclass(kind, str | int | float | bool):
        return lambda value: value  # type: ignore[return-value]

    def refuse(value: object) -> JsonValue:
        raise TypeError(f"{type(value).__name__} is not part of the report contract")

    return refuse


def _dataclass_encoder(kind: type) -> _Encoder:
    plan: list[tuple[str, Omit | None]] = [(spec.name, spec.metadata.get(OMIT)) for spec in dataclasses.fields(kind)]

    def encode(value: object) -> JsonValue:
        encoded: dict[str, JsonValue] = {}
        for name, omit in plan:
            item = getattr(value, name)
            if omit is not None and omit(value, item):
                continue
            encoded[name] = _encode(item)
        return encoded

    return encode


def _required(kind: type) -> set[str]:
    return {
        spec.name
        for spec in dataclasses.fields(kind)
        if spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING
    }


def _decode(kind: object, value: object, where: str) -> object:
    try:
        return _decoder(kind)(value)
    except _Misfit as misfit:
        raise ReportFormatError(f"{where}{''.join(reversed(misfit.path))} {misfit.problem}") from None


def _decoder(kind: object) -> _Decoder:
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = _decoder_for(kind)
    return decoder


def _decoder_for(kind: object) -> _Decoder:
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _dataclass_decoder(kind)
    origin = typing.get_origin(kind)
    if origin is types.UnionType or origin is typing.Union:
        return _union_decoder(typing.get_args(kind))
    if origin is tuple:
        return _tuple_decoder(typing.get_args(kind)[0])
    if origin is Mapping:
        return _mapping_decoder(typing.get_args(kind)[1])
    return _scalar_decoder(kind)


def _tuple_decoder(item_kind: object) -> _Decoder:
    def decode(value: object) -> object:
        if not isinstance(value, list | tuple):
            raise _Misfit("is not a list")
        item_decoder = _decoder(item_kind)
        items = []
        for index, item in enumerate(value):
            try:
                items.append(item_decoder(item))
            except _Misfit as misfit:
                raise misfit.at(f"[{index}]") from None
        return tuple(items)

    return decode


def _mapping_decoder(item_kind: object) -> _Decoder:
    def decode(value: object) -> object:
        if not isinstance(value, Mapping):
            raise _Misfit("is not an object")
        item_decoder = _decoder(item_kind)
        items = {}
        for key, item in value.items():
            try:
                items[str(key)] = item_decoder(item)
            except _Misfit as misfit:
                raise misfit.at(f".{key}") from None
        return items

    return decode


def _scalar_decoder(kind: object) -> _Decoder:
    name = getattr(kind, "__name__", kind)

    def wrong(value: object) -> _Misfit:
        return _Misfit(f"is {type(value).__name__}, not {name}")

    if kind is bool:

        def decode_bool(value: object) -> object:
            if isinstance(value, bool):
                return value
            raise wrong(value)

        return decode_bool
    if kind is int:

        def decode_int(value: object) -> object:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            raise wrong(value)

        return decode_int
    if kind is float:

        def decode_float(value: object) -> object:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
            raise wrong(value)

        return decode_float
    if kind is str:

        def decode_str(value: object) -> object:
            if isinstance(value, str):
                return value
            raise wrong(value)

        return decode_str

    def refuse(value: object) -> object:
        raise wrong(value)

    return refuse


def _union_decoder(options: tuple[object, ...]) -> _Decoder:
    nullable = type(None) in options
    candidates = [option for option in options if option is not type(None)]
    names = ", ".join(getattr(option, "__name__", str(option)) for option in candidates)
    # A union of parts (a plan or its failure): the first whose required keys are all there.
    parts = [
        (option, _required(option)) for option in candidates if isinstance(option, type) and dataclasses.is_dataclass(option)
    ]

    def decode(value: object) -> object:
        if value is None:
            if nullable:
                return None
            raise _Misfit("is null")
        if len(candidates) == 1:
            return _decoder(candidates[0])(value)
        for option, required in parts:
            if isinstance(value, Mapping) and required <= value.keys():
                return _decoder(option)(value)
        raise _Misfit(f"matches none of {names}")

    return decode


def _dataclass_decoder(kind: type) -> _Decoder:
    hints = dict(typing.get_type_hints(kind))
    required = _required(kind)
    plan = [(spec.name, hints[spec.name], spec.name in required) for spec in dataclasses.fields(kind)]

    def decode(value: object) -> object:
        if not isinstance(value, Mapping):
            raise _Misfit("is not an object")
        arguments: dict[str, object] = {}
        for name, hint, needed in plan:
            if name in value:
                try:
                    arguments[name] = _decoder(hint)(value[name])
                except _Misfit as misfit:
                    raise misfit.at(f".{name}") from None
            elif needed:
                raise _Misfit("is missing").at(f".{name}")
        return kind(**arguments)

    return decode
