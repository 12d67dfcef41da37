"""The API's report serializers (and so openapi.yaml's report components) cover the report
contract: every field of every part, at every depth, and nothing the contract lacks."""

from __future__ import annotations

import dataclasses
import types
import typing

from rest_framework import serializers

from changeapi.api.report_serializers import DryRunReportSerializer
from changeapi.dryrun.contract import Report


def _parts(kind: object) -> list[type]:
    """The dataclasses a field's type is made of: `X`, `X | None`, `tuple[X, ...]`, `X | Y`."""
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return [kind]
    origin = typing.get_origin(kind)
    if origin is types.UnionType or origin is typing.Union or origin is tuple:
        return [part for arg in typing.get_args(kind) for part in _parts(arg)]
    return []


def _nested(field: serializers.Field) -> serializers.Serializer | None:
    if isinstance(field, serializers.ListSerializer):
        field = field.child
    return field if isinstance(field, serializers.Serializer) else None


def _mismatches(kinds: list[type], serializer: serializers.Serializer, where: str) -> list[str]:
    hints = {name: hint for kind in kinds for name, hint in typing.get_type_hints(kind).items()}
    names = {field.name for kind in kinds for field in dataclasses.fields(kind)}
    fields = serializer.fields
    problems = [f"{where}.{name}: in the contract, not in {type(serializer).__name__}" for name in sorted(names - set(fields))]
    problems += [f"{where}.{name}: in {type(serializer).__name__}, not in the contract" for name in sorted(set(fields) - names)]
    for name in sorted(names & set(fields)):
        parts, nested = _parts(hints[name]), _nested(fields[name])
        if parts and nested is None:
            problems.append(f"{where}.{name}: a part of the contract, a plain field in {type(serializer).__name__}")
        elif parts and nested is not None:
            problems += _mismatches(parts, nested, f"{where}.{name}")
    return problems


def test_report_serializers_cover_every_field_of_the_report_contract():
    assert _mismatches([Report], DryRunReportSerializer(), "report") == []
