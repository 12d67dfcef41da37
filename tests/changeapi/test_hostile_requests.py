"""Hostile request bodies and query parameters: a located 4xx problem+json, and nothing stored.

Each case was sent by an attacker and once answered 500 (or was accepted and reached SQL):
altered pagination cursors, values of the wrong JSON type in the operations form, strings the
database cannot hold, JSON nested past any migration's depth, and signed Slack payloads of the
wrong shape.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from rest_framework.test import APIClient

from approvals.models import Review
from changeapi.intake.errors import IntakeError
from changeapi.intake.operations_json import parse_migration_documents
from changeapi.models import AccessPattern, AuditEvent, Baseline, ChangeRequest, DryRun, GitHubDelivery, Project, Revision
from tests.changeapi.test_github import _deliver, github  # noqa: F401 - fixture
from tests.changeapi.test_slack import _signed_post, slack  # noqa: F401 - fixture
from tests.conftest import SHOP_BASELINE
from tests.support.fake_http import fake_http  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)

LIST_ENDPOINTS = [
    "/api/v1/projects/",
    "/api/v1/baselines/",
    "/api/v1/change-requests/",
    "/api/v1/dry-runs/",
    "/api/v1/table-stats/",
    "/api/v1/bundles/",
    "/api/v1/audit-events/",
    "/api/v1/approval-policies/",
]


def _encoded(cursor: bytes) -> str:
    return base64.b64encode(cursor).decode("ascii")


HOSTILE_CURSORS = {
    "a position that is no id": _encoded(b"p=abc"),
    "a position holding NUL": _encoded(b"p=%00"),
    "a position past bigint": _encoded(b"p=99999999999999999999999"),
    "a negative offset": _encoded(b"o=-1"),
    "a direction that is no number": _encoded(b"r=x"),
    "not base64": "%%%not-base64",
    "base64 of bytes that are not text": _encoded(b"\xff\xfe\xfd"),
    "not ascii": "\u00e9t\u00e9",
}


def _raw_post(api: APIClient, path: str, body: Any, method: str = "post") -> Any:
    """Send `body` as JSON text exactly as given (json.dumps escapes NUL and lone surrogates)."""
    return getattr(api, method)(path, data=json.dumps(body), content_type="application/json")


def _change_request(**overrides: Any) -> dict[str, Any]:
    return {"project": "shop", "title": "Hostile", **overrides}


def _operations(*operations: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"app_label": "shop", "operations": list(operations)}]


def _add_field(field: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"op": "AddField", "model_name": "order", "name": "extra", "field": field, **extra}


def _nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def _assert_refused(response: Any, *, status: int = 400, pointer: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    if pointer is not None:
        assert pointer in [error.get("pointer") for error in body.get("errors", [])], body
    return body


def _assert_no_change_request_stored() -> None:
    assert not ChangeRequest.objects.exists()
    assert not Revision.objects.exists()
    assert not DryRun.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="change_request.").exists()


@pytest.fixture
def shop(owner: Any, client_for: Any) -> APIClient:
    """A project without a baseline: enough for every refusal that comes before intake."""
    api = client_for(owner)
    assert api.post("/api/v1/projects/", {"slug": "shop", "name": "Shop"}, format="json").status_code == 201
    return api


# --- 1. pagination cursors ------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", LIST_ENDPOINTS)
@pytest.mark.parametrize("cursor", list(HOSTILE_CURSORS.values()), ids=list(HOSTILE_CURSORS))
def test_a_cursor_the_api_did_not_give_is_a_400_pointing_at_the_cursor_on_every_list(shop, endpoint, cursor):
    response = shop.get(endpoint, {"cursor": cursor})

    _assert_refused(response, pointer="/cursor")


def test_a_cursor_the_api_gave_still_pages(shop):
    for number in range(3):
        shop.post("/api/v1/projects/", {"slug": f"p{number}", "name": "P"}, format="json")

    first = shop.get("/api/v1/projects/", {"page_size": 2}).json()
    second = shop.get(first["next"])

    assert second.status_code == 200
    assert len(first["results"]) + len(second.json()["results"]) == 4


@pytest.mark.parametrize(
    "path", ["/api/v1/projects/%00/", "/api/v1/projects/sh%00op/baselines/", "/api/v1/change-requests/1%00/"]
)
def test_a_nul_in_a_path_segment_is_a_404(shop, path):
    _assert_refused(shop.get(path), status=404)


# --- 2. values of the wrong JSON type in the operations form --------------------------------------

FK = {"type": "ForeignKey", "to": "shop.Customer", "on_delete": "CASCADE", "null": True}
AT = "/operations/0/operations/0"
WRONG_TYPES = {
    "on_delete as a list": (_add_field({**FK, "on_delete": ["CASCADE"]}), f"{AT}/field/on_delete"),
    "on_delete as an object": (_add_field({**FK, "on_delete": {"CASCADE": True}}), f"{AT}/field/on_delete"),
    "default_callable as a list": (
        _add_field({"type": "UUIDField", "null": True, "default_callable": ["uuid.uuid4"]}),
        f"{AT}/field/default_callable",
    ),
    "default_callable as an object": (
        _add_field({"type": "UUIDField", "null": True, "default_callable": {"name": "uuid.uuid4"}}),
        f"{AT}/field/default_callable",
    ),
    "opclasses as a number": (
        {"op": "AddIndex", "model_name": "order", "index": {"name": "order_total_idx", "fields": ["total"], "opclasses": 5}},
        f"{AT}/index/opclasses",
    ),
    "unique_together as a number": (
        {"op": "AlterUniqueTogether", "name": "order", "unique_together": 7},
        f"{AT}/unique_together",
    ),
    "a model's unique_together as a number": (
        {
            "op": "CreateModel",
            "name": "Invoice",
            "fields": [{"name": "id", "field": {"type": "BigAutoField", "primary_key": True}}],
            "options": {"unique_together": 7},
        },
        f"{AT}/options/unique_together",
    ),
    "null as a string": (_add_field({"type": "TextField", "null": "yes"}), f"{AT}/field/null"),
    "preserve_default as a string": (
        _add_field({"type": "TextField", "null": True}, preserve_default="no"),
        f"{AT}/preserve_default",
    ),
    "a field spec as a string": (_add_field("TextField"), f"{AT}/field"),  # type: ignore[arg-type]
    "fields as an object": (
        {"op": "CreateModel", "name": "Invoice", "fields": {"id": {"type": "BigAutoField"}}},
        f"{AT}/fields",
    ),
    "an F reference to a number": (
        {
            "op": "AddConstraint",
            "model_name": "order",
            "constraint": {"kind": "check", "name": "order_total_ck", "condition": {"total__gte": {"F": 5}}},
        },
        f"{AT}/constraint/condition/total__gte/F",
    ),
    "an ArrayField element of the wrong type": (
        _add_field({"type": "ArrayField", "null": True, "base_field": {"type": "CharField", "max_length": "x"}}),
        f"{AT}/field/base_field/max_length",
    ),
    "a default that is no value of the field": (
        _add_field({"type": "IntegerField", "default": {"total": 1}}),
        f"{AT}/field/default",
    ),
}


@pytest.mark.parametrize(("operation", "pointer"), list(WRONG_TYPES.values()), ids=list(WRONG_TYPES))
def test_a_value_of_the_wrong_json_type_in_the_operations_form_is_a_located_400(project_with_baseline, operation, pointer):
    response = project_with_baseline["api"].post(
        "/api/v1/change-requests/", _change_request(operations=_operations(operation)), format="json"
    )

    _assert_refused(response, pointer=pointer)
    _assert_no_change_request_stored()


def test_a_migration_whose_operations_are_not_a_list_is_a_located_400(project_with_baseline):
    migrations = [{"app_label": "shop", "operations": 5}]

    response = project_with_baseline["api"].post(
        "/api/v1/change-requests/", _change_request(operations=migrations), format="json"
    )

    _assert_refused(response, pointer="/operations/0/operations")
    _assert_no_change_request_stored()


ENGINE_WRONG_TYPES = {
    "on_delete as a list": (_add_field({**FK, "on_delete": ["CASCADE"]}), "field/on_delete"),
    "opclasses as a number": (
        {"op": "AddIndex", "model_name": "order", "index": {"name": "order_total_idx", "fields": ["total"], "opclasses": 5}},
        "index/opclasses",
    ),
    "unique_together as a number": ({"op": "AlterUniqueTogether", "name": "order", "unique_together": 7}, "unique_together"),
    "max_length as a string": (_add_field({"type": "CharField", "max_length": "abc", "null": True}), "field/max_length"),
}


@pytest.mark.parametrize(("operation", "member"), list(ENGINE_WRONG_TYPES.values()), ids=list(ENGINE_WRONG_TYPES))
def test_the_intake_reads_every_value_as_its_type_without_the_api_in_front(operation, member):
    # Tasks and commands drive the engine too: its own reads refuse what the API's types would.
    documents = [*SHOP_BASELINE, *_operations(operation)]

    with pytest.raises(IntakeError) as refused:
        parse_migration_documents(documents)

    assert refused.value.location.pointer == f"/operations/1/operations/0/{member}"


# --- 3. strings the database cannot hold ----------------------------------------------------------

UNSTORABLE = {
    "NUL in RunSQL": (
        _change_request(operations=_operations({"op": "RunSQL", "sql": "SELECT 1 -- \u0000"})),
        "/operations/0/operations/0/sql",
    ),
    "NUL in a default": (
        _change_request(operations=_operations(_add_field({"type": "TextField", "default": "a\u0000b"}))),
        "/operations/0/operations/0/field/default",
    ),
    "a lone surrogate in db_comment": (
        _change_request(operations=_operations(_add_field({"type": "TextField", "null": True, "db_comment": "\ud800"}))),
        "/operations/0/operations/0/field/db_comment",
    ),
    "a lone surrogate in the title": (_change_request(title="x\udfffy"), "/title"),
    "NUL in a member name": (_change_request(**{"note\u0000": 1}), "/note\\u0000"),
}


@pytest.mark.parametrize(("body", "pointer"), list(UNSTORABLE.values()), ids=list(UNSTORABLE))
def test_a_string_the_database_cannot_hold_is_a_400_pointing_at_it(shop, body, pointer):
    response = _raw_post(shop, "/api/v1/change-requests/", body)

    problem = _assert_refused(response, pointer=pointer)
    assert problem["type"].endswith("/unstorable-value")
    _assert_no_change_request_stored()


def test_nul_in_intake_settings_is_a_400_and_the_settings_are_unchanged(shop):
    response = _raw_post(
        shop, "/api/v1/projects/shop/", {"intake_settings": {"setting_values": {"AUTH_USER_MODEL": "a\u0000"}}}, "patch"
    )

    _assert_refused(response, pointer="/intake_settings/setting_values/AUTH_USER_MODEL")
    assert not Project.objects.get(slug="shop").intake_settings


def test_a_number_past_the_range_of_a_double_is_a_400_and_the_settings_are_unchanged(shop):
    # 1e999 parses as infinity, which jsonb cannot hold.
    body = '{"intake_settings": {"setting_values": {"TIMEOUT": 1e999}}}'

    response = shop.patch("/api/v1/projects/shop/", data=body, content_type="application/json")

    _assert_refused(response, pointer="/intake_settings/setting_values/TIMEOUT")
    assert not Project.objects.get(slug="shop").intake_settings


def test_a_lone_surrogate_in_an_access_pattern_is_a_400_and_nothing_is_stored(shop):
    response = _raw_post(shop, "/api/v1/projects/shop/access-patterns/", {"name": "by \udc00", "sql": "SELECT 1"})

    _assert_refused(response, pointer="/name")
    assert not AccessPattern.objects.exists()


# --- 4. JSON nested past any migration's depth ----------------------------------------------------


def test_a_body_nested_5000_deep_is_a_400_naming_the_depth_limit(shop):
    # Built as text: json.dumps itself cannot write something this deep.
    body = '{"project": "shop", "title": "Hostile", "description": ' + "[" * 5000 + "]" * 5000 + "}"

    response = shop.post("/api/v1/change-requests/", data=body, content_type="application/json")

    problem = _assert_refused(response)
    assert problem["limit"] == {"name": "SCHEMAGATE_MAX_JSON_DEPTH", "value": 64}
    assert problem["errors"][0]["pointer"] == "/description" + "/0" * 63
    _assert_no_change_request_stored()


def test_a_top_level_array_nested_5000_deep_is_a_400_naming_the_depth_limit(shop):
    response = shop.post("/api/v1/change-requests/", data="[" * 5000 + "]" * 5000, content_type="application/json")

    assert _assert_refused(response)["limit"]["name"] == "SCHEMAGATE_MAX_JSON_DEPTH"
    _assert_no_change_request_stored()


def test_access_pattern_params_nested_500_deep_are_a_400_and_nothing_is_stored(shop):
    pattern = {"name": "deep", "sql": "SELECT %(x)s", "params": {"x": _nested(500)}}

    response = _raw_post(shop, "/api/v1/projects/shop/access-patterns/", pattern)

    problem = _assert_refused(response)
    assert problem["limit"]["name"] == "SCHEMAGATE_MAX_JSON_DEPTH"
    assert problem["errors"][0]["pointer"].startswith("/params/x/0/0")
    assert not AccessPattern.objects.exists()


def test_the_depth_limit_is_a_setting(shop, settings):
    settings.SCHEMAGATE_MAX_JSON_DEPTH = 3

    response = _raw_post(shop, "/api/v1/projects/shop/", {"intake_settings": {"setting_values": {"X": [[1]]}}}, "patch")

    assert _assert_refused(response)["limit"] == {"name": "SCHEMAGATE_MAX_JSON_DEPTH", "value": 3}


def test_json_nested_within_the_limit_is_accepted(shop):
    response = _raw_post(shop, "/api/v1/projects/shop/", {"intake_settings": {"setting_values": {"X": _nested(40)}}}, "patch")

    assert response.status_code == 200, response.content


# --- 5. signed Slack interactions of the wrong shape ----------------------------------------------


def _ready_for_review(project_with_baseline: dict[str, Any], slack_server: Any) -> str:
    """Submit a change; the value of the Approve button Slack was sent for it."""
    response = project_with_baseline["api"].post(
        "/api/v1/change-requests/",
        _change_request(operations=_operations(_add_field({"type": "TextField", "null": True}))),
        format="json",
    )
    assert response.status_code == 202, response.content
    [message] = slack_server.sent("POST", "/chat.postMessage")
    return message.json()["blocks"][1]["elements"][0]["value"]


def _interaction(**payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


MALFORMED_INTERACTIONS = {
    "actions as a string": ({"actions": "schemagate_approve"}, "/actions"),
    "actions as an object": ({"actions": {"action_id": "schemagate_approve"}}, "/actions"),
    "an action that is a number": ({"actions": [5]}, "/actions/0"),
    "an action_id that is a list": ({"actions": [{"action_id": ["schemagate_approve"]}]}, "/actions/0/action_id"),
    "user as a string": ({"user": "UREVIEWER"}, "/user"),
    "user as a list": ({"user": ["UREVIEWER"]}, "/user"),
    "a user id that is an object": ({"user": {"id": {"id": "UREVIEWER"}}}, "/user/id"),
    "a button value that is an object": ({"actions": [{"action_id": "schemagate_approve", "value": {}}]}, "/actions/0/value"),
    "response_url as a number": ({"response_url": 5}, "/response_url"),
}


@pytest.mark.parametrize(("shape", "pointer"), list(MALFORMED_INTERACTIONS.values()), ids=list(MALFORMED_INTERACTIONS))
def test_a_signed_slack_interaction_of_the_wrong_shape_is_a_400_and_decides_nothing(
    slack,  # noqa: F811
    project_with_baseline,
    shape,
    pointer,
):
    value = _ready_for_review(project_with_baseline, slack)
    payload = {
        "type": "block_actions",
        "user": {"id": "UREVIEWER"},
        "actions": [{"action_id": "schemagate_approve", "value": value}],
        "response_url": f"{slack.url}/actions/T1/reply",
        **shape,
    }

    response = _signed_post(Client(), "/api/v1/integrations/slack/interactive", _interaction(**payload))

    _assert_refused(response, pointer=pointer)
    assert not Review.objects.exists()
    assert ChangeRequest.objects.get().status == "ready_for_review"
    assert slack.sent("POST", "/actions/T1/reply") == []


def test_a_signed_slack_payload_nested_5000_deep_is_a_400_naming_the_depth_limit(slack):  # noqa: F811
    body = b"payload=" + b"%5B" * 5000 + b"%5D" * 5000

    response = _signed_post(Client(), "/api/v1/integrations/slack/interactive", body)

    assert _assert_refused(response)["limit"]["name"] == "SCHEMAGATE_MAX_JSON_DEPTH"


def test_a_signed_slack_command_with_nul_in_a_field_is_a_400(slack):  # noqa: F811
    body = b"command=%2Fschemagate&text=status+1&user_id=U%00&team_id=T1"

    response = _signed_post(Client(), "/api/v1/integrations/slack/commands", body)

    _assert_refused(response, pointer="/user_id")


def test_a_signed_github_delivery_holding_nul_is_a_400_and_is_not_stored(github, client):  # noqa: F811
    response = _deliver(client, "issue_comment", {"action": "created", "comment": {"body": "approve\u0000"}})

    _assert_refused(response, pointer="/comment/body")
    assert not GitHubDelivery.objects.exists()


# --- 6. values that break the published OpenAPI types ---------------------------------------------

PUBLISHED_TYPES = {
    "max_length as a word": ({"type": "CharField", "max_length": "abc", "null": True}, "max_length"),
    "max_length as digits in a string": ({"type": "CharField", "max_length": "10", "null": True}, "max_length"),
    "max_length as true": ({"type": "CharField", "max_length": True, "null": True}, "max_length"),
    "null as the string 'true'": ({"type": "TextField", "null": "true"}, "null"),
    "db_column as a number": ({"type": "TextField", "null": True, "db_column": 5}, "db_column"),
    "decimal_places below zero": (
        {"type": "DecimalField", "max_digits": 5, "decimal_places": -1, "null": True},
        "decimal_places",
    ),
}


@pytest.mark.parametrize(("field", "member"), list(PUBLISHED_TYPES.values()), ids=list(PUBLISHED_TYPES))
def test_a_value_that_breaks_its_published_type_is_refused_before_intake(project_with_baseline, field, member):
    response = project_with_baseline["api"].post(
        "/api/v1/change-requests/", _change_request(operations=_operations(_add_field(field))), format="json"
    )

    problem = _assert_refused(response, pointer=f"{AT}/field/{member}")
    assert problem["type"].endswith("/validation-error")
    _assert_no_change_request_stored()


def test_a_baseline_is_held_to_the_published_types_too(shop):
    baseline = json.loads(json.dumps(SHOP_BASELINE))
    baseline[0]["operations"][0]["fields"][1]["field"]["max_length"] = "abc"

    response = shop.post("/api/v1/projects/shop/baselines/", {"operations": baseline}, format="json")

    _assert_refused(response, pointer="/operations/0/operations/0/fields/1/field/max_length")
    assert not Baseline.objects.exists()
