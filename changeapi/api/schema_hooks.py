"""OpenAPI post-processing: every operation documents its errors as application/problem+json.

Errors come from one exception handler for every view, so they are documented in one place
too, instead of on each action; clients and schema-driven testers then know the error shape.
"""

from __future__ import annotations

from typing import Any

PROBLEM_SCHEMA = {
    "type": "object",
    "description": "RFC 9457 problem details.",
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "detail": {"type": "string"},
                    "pointer": {"type": "string", "description": "JSON pointer into the request body."},
                    "parameter": {"type": "string", "description": "The query parameter at fault."},
                    "file": {"type": "string"},
                    "line": {"type": "integer"},
                    "column": {"type": "integer"},
                    "blocks": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "Migrations (app_label.name) that cannot be read because of this refusal.",
                    },
                },
                "required": ["detail"],
            },
        },
        "total_errors": {"type": "integer", "description": "All refusals, also those past the listed ones."},
        "suggestion": {
            "type": "object",
            "description": "What to add to the request to get past the refusal, in the request's own shape "
            "(for a rename the models form cannot tell: {'renames': {'fields': {'shop.Order.total': 'amount'}}}).",
        },
        "limit": {
            "type": "object",
            "description": "The configured limit that refused the request.",
            "properties": {"name": {"type": "string"}, "value": {}},
            "required": ["name"],
        },
    },
    "required": ["type", "title", "status", "detail"],
}

DESCRIPTIONS = {
    "400": "The request is not valid (problem details say where).",
    "401": "Not authenticated.",
    "403": "Authenticated, but without the permission this needs.",
    "404": "Not found, or not visible to this user.",
    "409": "Not allowed in the current state.",
    "412": "The revision is no longer the latest.",
    "413": "A configured limit was exceeded.",
    "422": "Idempotency-Key reused with another body, or submitted source past a reading budget (named).",
    "428": "A precondition (If-Match or revision) is required.",
    "429": "Rate limit exceeded.",
}

ALWAYS = ("401", "404", "429")
WRITES = ("400", "403", "409", "413")


def problem_responses_hook(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            wanted = list(ALWAYS) + (list(WRITES) if method != "get" else [])
            if method == "get" and any(parameter.get("in") == "query" for parameter in operation.get("parameters", [])):
                wanted.append("400")  # a filter or cursor that is not valid
            for code in wanted:
                responses.setdefault(code, {"description": DESCRIPTIONS[code]})
            for code, response in responses.items():
                if code.startswith(("4", "5")) and "content" not in response:
                    response["content"] = content
    return result
