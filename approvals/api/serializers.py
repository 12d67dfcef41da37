"""Input and output shapes of reviews, bundles and audit events."""

from __future__ import annotations

from rest_framework import serializers

from approvals.models import AuditEvent, ReleaseBundle, Review


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = serializers.CharField(source="reviewer.username", read_only=True)
    revision_number = serializers.IntegerField(source="revision.number", read_only=True)

    class Meta:
        model = Review
        fields = ["id", "revision", "revision_number", "reviewer", "decision", "comment", "created_at"]
        read_only_fields = fields


class ReviewDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=Review.Decision.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=10000)
    revision = serializers.IntegerField(
        required=False, help_text="Id of the revision decided on; or send If-Match with the revision's ETag."
    )


class BundleCreateSerializer(serializers.Serializer):
    project = serializers.SlugField()
    change_requests = serializers.ListField(
        child=serializers.IntegerField(), min_length=1, max_length=50, help_text="Change request ids, in release order."
    )


class BundleItemSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    change_request = serializers.IntegerField(source="change_request_id")
    number = serializers.IntegerField(source="change_request.number")
    revision = serializers.IntegerField(source="revision_id")


class ReleaseBundleSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    items = BundleItemSerializer(many=True, read_only=True)
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = ReleaseBundle
        fields = ["id", "project", "number", "sha256", "filename", "items", "created_by", "created_at", "download_url"]
        read_only_fields = fields

    def get_download_url(self, obj: ReleaseBundle) -> str:
        return f"/api/v1/bundles/{obj.pk}/download/"


class AuditEventSerializer(serializers.ModelSerializer):
    project = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    actor = serializers.CharField(source="actor.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "project",
            "actor",
            "via",
            "action",
            "target_type",
            "target_id",
            "before",
            "after",
            "source_ip",
            "created_at",
        ]
        read_only_fields = fields


class SigningKeySerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    public_key_pem = serializers.CharField()
