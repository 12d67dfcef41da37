"""Input and output shapes of API keys, integrations, identities and webhook subscriptions."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from rest_framework import serializers

from changeapi.models import ApiKey, ExternalIdentity, Project, WebhookAttempt, WebhookDelivery, WebhookSubscription
from changeapi.services.api_keys import GRANTABLE
from changeapi.services.webhooks import EVENT_TYPES


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    permissions = serializers.ListField(
        child=serializers.ChoiceField(choices=list(GRANTABLE)),
        help_text="At most your own permissions on the project; view_project is always included.",
    )
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)


class ApiKeySerializer(serializers.ModelSerializer):
    project: serializers.SlugRelatedField[Project] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    permissions = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "project",
            "name",
            "prefix",
            "permissions",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
        ]
        read_only_fields = fields


class ApiKeyIssuedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The whole key, `sg_<prefix>_<secret>`: shown only this once.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class GitHubIntegrationInputSerializer(serializers.Serializer):
    repository = serializers.RegexField(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", max_length=200, help_text="owner/name")
    webhook_secret = serializers.CharField(min_length=16, max_length=200, write_only=True)


class GitHubIntegrationSerializer(serializers.Serializer):
    repository = serializers.CharField()
    webhook_url = serializers.CharField(help_text="Payload URL to enter in the repository's webhook settings.")
    service_account = serializers.CharField(help_text="The user pull requests are submitted as when their author is not mapped.")


class SlackIntegrationSerializer(serializers.Serializer):
    channel = serializers.RegexField(r"^[A-Z0-9]{2,64}$", help_text="Slack channel id (e.g. C0123456) for approval messages.")


class ExternalIdentitySerializer(serializers.ModelSerializer):
    username = serializers.SlugRelatedField(
        source="user", slug_field="username", queryset=get_user_model().objects.all(), help_text="Schemagate user."
    )
    external_id = serializers.RegexField(
        r"^[A-Za-z0-9]{1,64}$", help_text="GitHub numeric user id or Slack user id (U…), never a login or display name."
    )

    class Meta:
        model = ExternalIdentity
        fields = ["id", "provider", "external_id", "username", "created_at", "confirmed_at"]
        read_only_fields = ["id", "created_at", "confirmed_at"]


class IdentityConfirmationSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="One-time code; send it from the linked account within the hour.")
    expires_at = serializers.DateTimeField()
    instructions = serializers.CharField()


class WebhookSubscriptionCreateSerializer(serializers.Serializer):
    url = serializers.URLField(max_length=2000)
    event_types = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENT_TYPES)), min_length=1)


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = WebhookSubscription
        fields = ["id", "url", "event_types", "is_active", "created_at"]
        read_only_fields = fields


class WebhookSubscriptionIssuedSerializer(WebhookSubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="`whsec_…` signing secret (Standard Webhooks): shown only this once."
    )

    class Meta(WebhookSubscriptionSerializer.Meta):
        fields = [*WebhookSubscriptionSerializer.Meta.fields, "secret"]
        read_only_fields = fields


class WebhookAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "attempted_at", "status_code", "response_excerpt", "error", "duration_ms", "next_attempt_at"]
        read_only_fields = fields


class WebhookDeliverySerializer(serializers.ModelSerializer):
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "message_id",
            "event_type",
            "status",
            "attempts",
            "next_attempt_at",
            "created_at",
            "delivered_at",
            "attempt_log",
        ]
        read_only_fields = fields


class GitHubWebhookAckSerializer(serializers.Serializer):
    delivery = serializers.CharField(help_text="X-GitHub-Delivery")
    status = serializers.ChoiceField(choices=["queued", "duplicate"])


class SlackMessageSerializer(serializers.Serializer):
    response_type = serializers.ChoiceField(choices=["ephemeral", "in_channel"])
    text = serializers.CharField()


class SlackCommandFormSerializer(serializers.Serializer):
    """What Slack sends for a slash command (form-encoded); only these fields are read."""

    command = serializers.CharField()
    text = serializers.CharField(allow_blank=True)
    user_id = serializers.CharField()
    team_id = serializers.CharField(required=False)
    response_url = serializers.URLField(required=False)


class SlackInteractionFormSerializer(serializers.Serializer):
    payload = serializers.CharField(help_text="Slack's interaction payload, as JSON text.")
