"""The published OpenAPI document enforced on every request: a request that breaks it is a 400.

DRF's fields are lenient where the published types are not (a `CharField` takes the number 0
as "0"; a page size of "abc" falls back to the default), so a client generated from
openapi.yaml and one that ignores it would be answered alike. This middleware checks each
request to a documented operation before any view runs: its query parameters against their
schemas, and its JSON body against the operation's request body schema, with the validator
of OpenAPI 3.0 schemas (`nullable`, formats). Every violation is listed with a JSON pointer
(`/intake_settings/installed_apps/0`) or the parameter's name.

The document is the committed openapi.yaml, which CI keeps equal to what the code generates.
Bodies of the GitHub and Slack receivers are the senders' and are left to their handlers.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator
from openapi_schema_validator import OAS30WriteValidator, oas30_format_checker

from changeapi.api.idempotency import UNSIGNED_PATHS
from changeapi.api.parsers import json_document_load, json_pointer
from changeapi.api.problems import PROBLEM_CONTENT_TYPE, problem

MAX_REPORTED = 20
_MAX_DETAIL = 300
_TEMPLATE_PARAMETER = re.compile(r"\{[^}/]+\}")
_INTEGER = re.compile(r"^-?\d{1,18}$")
_NUMBER = re.compile(r"^-?\d{1,18}(\.\d{1,18})?([eE][-+]?\d{1,3})?$")


@dataclass(frozen=True)
class QueryParameter:
    name: str
    required: bool
    schema: dict[str, Any]
    validator: Validator


@dataclass(frozen=True)
class PublishedOperation:
    """What the document says one method of one path accepts."""

    path: str
    parameters: tuple[QueryParameter, ...]
    body: Validator | None


def _validator(schema: dict[str, Any], components: dict[str, Any]) -> Validator:
    # `#/components/...` references resolve against the document root, which carries them.
    root = {**schema, "components": components}
    return OAS30WriteValidator(root, format_checker=oas30_format_checker)


def _operation(path: str, spec: dict[str, Any], item: dict[str, Any], method: str) -> PublishedOperation:
    operation = item[method]
    components = spec.get("components", {})
    declared = [*item.get("parameters", []), *operation.get("parameters", [])]
    parameters = tuple(
        QueryParameter(
            name=p["name"],
            required=bool(p.get("required")),
            schema=p.get("schema", {}),
            validator=_validator(p.get("schema", {}), components),
        )
        for p in declared
        if p.get("in") == "query"
    )
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    body = _validator(schema, components) if schema is not None and not path.startswith(UNSIGNED_PATHS) else None
    return PublishedOperation(path=path, parameters=parameters, body=body)


@functools.cache
def _published() -> list[tuple[re.Pattern[str], dict[str, PublishedOperation]]]:
    """Each documented path as a pattern with its operations; literal paths before templated ones,
    so `/bundles/verify/` is not read as `/bundles/{id}/`."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(Path(settings.SCHEMAGATE_OPENAPI_PATH).read_text(), Loader=loader)  # noqa: S506 - a safe loader
    entries = []
    for path, item in spec.get("paths", {}).items():
        pattern = re.compile("^" + "[^/]+".join(map(re.escape, _TEMPLATE_PARAMETER.split(path))) + "$")
        methods = {m: _operation(path, spec, item, m) for m in ("get", "post", "put", "patch", "delete") if m in item}
        entries.append((len(_TEMPLATE_PARAMETER.findall(path)), path, pattern, methods))
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return [(pattern, methods) for _, _, pattern, methods in entries]


def published_operation(path: str, method: str) -> PublishedOperation | None:
    for pattern, methods in _published():
        if pattern.match(path):
            return methods.get(method.lower())
    return None


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _typed(raw: str, schema: dict[str, Any]) -> object:
    """A query string value as the type its schema names; left a string where it is not one."""
    kind = schema.get("type")
    if kind == "integer" and _INTEGER.match(raw):
        return int(raw)
    if kind == "number" and _NUMBER.match(raw):
        return float(raw)
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


def _query_errors(operation: PublishedOperation, query: QueryDict) -> list[dict[str, str]]:
    errors: list[dict[str, str]] = []
    for parameter in operation.parameters:
        values = query.getlist(parameter.name)
        if not values:
            if parameter.required:
                errors.append({"parameter": parameter.name, "detail": "this query parameter is required"})
            continue
        if parameter.schema.get("type") == "array":
            value: object = [_typed(v, parameter.schema.get("items", {})) for v in values]
        elif len(values) > 1:
            errors.append({"parameter": parameter.name, "detail": "this query parameter may be given once"})
            continue
        else:
            value = _typed(values[0], parameter.schema)
        failure = best_match(parameter.validator.iter_errors(value))
        if failure is not None:
            errors.append({"parameter": parameter.name, "detail": _shorten(failure.message)})
    return errors


def _located(error: ValidationError) -> dict[str, str]:
    """The error at the member it is about: the missing property of a `required`, the branch a
    discriminator names (or the discriminator itself) of a `oneOf`, rather than their object."""
    path: list[str | int] = list(error.absolute_path)
    instance = error.instance
    if error.validator == "required" and isinstance(instance, dict):
        missing = [name for name in error.validator_value if name not in instance]
        if missing:
            # One error per missing property, each saying which in its message ("'tables' is a
            # required property"): located at its own property, not all at the first.
            named = next((name for name in missing if error.message.startswith(repr(name))), missing[0])
            return {"pointer": json_pointer([*path, named]), "detail": "this field is required"}
    discriminator = error.schema.get("discriminator") if isinstance(error.schema, dict) else None
    if error.validator in ("oneOf", "anyOf") and discriminator and isinstance(instance, dict):
        name = discriminator["propertyName"]
        mapping: dict[str, str] = discriminator.get("mapping", {})
        if name not in instance:
            return {"pointer": json_pointer([*path, name]), "detail": "this field is required"}
        chosen = instance[name]
        if not isinstance(chosen, str) or chosen not in mapping:
            known = ", ".join(sorted(mapping))
            detail = f"{_shorten(repr(chosen))} is not one of{_near_miss(chosen, mapping)}: {known}"
            return {"pointer": json_pointer([*path, name]), "detail": detail}
        branches = [branch.get("$ref") for branch in error.validator_value]
        if mapping[chosen] in branches:
            index = branches.index(mapping[chosen])
            within = [e for e in error.context or [] if e.relative_schema_path and e.relative_schema_path[0] == index]
            if within:
                return _located(best_match(within))
    if error.validator == "enum" and isinstance(instance, str) and isinstance(error.validator_value, list):
        hint = _near_miss(instance, [v for v in error.validator_value if isinstance(v, str)])
        if hint:
            return {"pointer": json_pointer(path), "detail": f"{_shorten(repr(instance))} is not one of the allowed values{hint}"}
    return {"pointer": json_pointer(path), "detail": _shorten(error.message)}


def _near_miss(given: Any, known: Any) -> str:
    """` (did you mean 'EmailField'?)` for a misspelt name among `known`, else nothing."""
    if not isinstance(given, str):
        return ""
    close = difflib.get_close_matches(given, list(known), n=2, cutoff=0.75)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _body_errors(validator: Validator, document: Any) -> list[dict[str, str]]:
    found: list[ValidationError] = []
    for error in validator.iter_errors(document):
        found.append(error)
        if len(found) >= MAX_REPORTED:
            break
    if not found:
        return []
    first = best_match(found)
    located = [_located(e) for e in [first, *(e for e in found if e is not first)]]
    return [error for i, error in enumerate(located) if error not in located[:i]]


def request_violations(request: HttpRequest) -> list[dict[str, str]]:
    """How `request` breaks the published document (empty if it does not, or is not documented)."""
    operation = published_operation(request.path_info, request.method or "GET")
    if operation is None:
        return []
    errors = _query_errors(operation, request.GET)
    content_type = (request.content_type or "").split(";")[0].strip().lower()
    if operation.body is not None and content_type == "application/json" and request.body:
        try:
            document = json_document_load(request.body.decode(request.encoding or settings.DEFAULT_CHARSET))
        except Exception:  # noqa: BLE001 - unparsable bodies are refused by the view's parser, with its own error
            return errors
        errors += _body_errors(operation.body, document)
    return errors


class PublishedSchemaMiddleware:
    """Refuse, as a 400 problem+json listing every violation, a request that breaks openapi.yaml."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        errors = request_violations(request)
        if not errors:
            return self.get_response(request)
        detail = "; ".join(f"{_where(e)}: {e['detail']}" for e in errors[:5])
        body = problem(400, "validation-error", "The request is not valid", detail, errors=errors)
        return JsonResponse(body, status=400, content_type=PROBLEM_CONTENT_TYPE)


def _where(error: dict[str, str]) -> str:
    return error.get("pointer") or f"query parameter {error.get('parameter')}"
