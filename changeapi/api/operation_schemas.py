"""Typed OpenAPI schemas of the `operations` form, so generated clients get real classes.

Each operation is its own component with a required single-value `op`, so clients that try
union members in order still decode each document to its own type. A submitted document is
validated against its published type first (a wrong JSON type is a 400 with its pointer); the
intake (`changeapi.intake.operations_json`) then applies the rules no type can state (names,
references to the baseline, the SQL policy), also with JSON pointers.
"""

from __future__ import annotations

from typing import Any, cast

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers
from rest_framework.settings import api_settings

from changeapi.intake.backfill import MAX_BATCH_SIZE, MAX_PAUSE_MS
from changeapi.intake.expressions_json import FUNCTIONS
from changeapi.intake.operations_json import DEFAULT_CALLABLES, FIELD_TYPES, ON_DELETE


def _op(name: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=[name], help_text=f"Always '{name}'.")


class StringField(serializers.CharField):
    """A JSON string only: DRF's CharField would also take a number and turn it into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class IntegerField(serializers.IntegerField):
    """A JSON integer only: DRF's IntegerField would also take "10", 10.0 and true."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data


class BooleanField(serializers.BooleanField):
    """JSON true or false only: DRF's BooleanField would also take "yes", "0" and 1."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


# Checks a document against its published type and keeps it as it was sent. DRF's Serializer
# builds validated data and signals every absent optional field with an exception, which a
# baseline of 100,000 operations cannot pay for each of its specs; here only the members present
# are validated (absent required ones are reported), on one shared instance per type. (A comment,
# not a docstring: drf-spectacular would publish a docstring as every subclass's description.)
class PublishedType(serializers.Serializer):
    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            message = self.error_messages["invalid"].format(datatype=type(data).__name__)
            raise serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [message]}, code="invalid")
        errors: dict[str, Any] = {}
        for name, field in self.fields.items():
            if name not in data:
                if field.required:
                    errors[name] = [serializers.ErrorDetail(str(field.error_messages["required"]), code="required")]
                continue
            try:
                value = field.run_validation(data[name])
                check = getattr(self, f"validate_{name}", None)
                if check is not None:
                    check(value)
            except serializers.ValidationError as exc:
                errors[name] = exc.detail
        if errors:
            raise serializers.ValidationError(errors)
        return data


# Named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]: other `type` enums exist.
FIELD_TYPE_CHOICES = sorted(FIELD_TYPES)


class FieldSpecSerializer(PublishedType):
    type = serializers.ChoiceField(choices=FIELD_TYPE_CHOICES)
    null = BooleanField(required=False)
    blank = BooleanField(required=False)
    default = serializers.JSONField(required=False, allow_null=True, help_text="A JSON value used as the field's default.")
    default_callable = serializers.ChoiceField(choices=sorted(DEFAULT_CALLABLES), required=False)
    db_default = serializers.JSONField(required=False, allow_null=True, help_text="A JSON value used as the database default.")
    unique = BooleanField(required=False)
    db_index = BooleanField(required=False)
    primary_key = BooleanField(required=False)
    max_length = IntegerField(required=False, min_value=1)
    max_digits = IntegerField(required=False, min_value=1)
    decimal_places = IntegerField(required=False, min_value=0)
    db_column = StringField(required=False)
    db_comment = StringField(required=False, allow_blank=True)
    db_tablespace = StringField(required=False)
    auto_now = BooleanField(required=False)
    auto_now_add = BooleanField(required=False)
    to = StringField(required=False, help_text="Related model, 'app_label.ModelName'.")
    on_delete = serializers.ChoiceField(choices=list(ON_DELETE), required=False)
    related_name = StringField(required=False)
    related_query_name = StringField(required=False)
    db_constraint = BooleanField(required=False)
    to_field = StringField(required=False)
    choices = serializers.ListField(
        child=serializers.ListField(child=serializers.JSONField(), min_length=2, max_length=2),
        required=False,
        help_text="[value, label] pairs.",
    )
    editable = BooleanField(required=False)
    verbose_name = StringField(required=False, allow_blank=True)
    help_text = StringField(required=False, allow_blank=True)  # type: ignore[assignment]  # a declared field; DRF's metaclass moves it off the class
    size = IntegerField(required=False, min_value=1, help_text="For ArrayField: the most elements.")
    protocol = StringField(required=False, help_text="For GenericIPAddressField: 'both', 'IPv4' or 'IPv6'.")
    unpack_ipv4 = BooleanField(required=False)
    upload_to = StringField(required=False, allow_blank=True)
    base_field = serializers.DictField(required=False, help_text="For ArrayField: the element's field spec.")

    def validate_base_field(self, value: dict[str, Any]) -> dict[str, Any]:
        """The element's spec has the same published type; its errors are pointed to inside it."""
        return self.to_internal_value(value)


class NamedFieldSerializer(PublishedType):
    name = StringField()
    field = FieldSpecSerializer()


class IndexSpecSerializer(PublishedType):
    name = StringField(max_length=30)
    fields = serializers.ListField(child=StringField(), min_length=1)  # type: ignore[assignment]  # a declared field; DRF's metaclass moves it off the class
    opclasses = serializers.ListField(child=StringField(), required=False)
    condition = serializers.DictField(required=False, help_text='Django lookups, e.g. {"status": "open"}.')


class ConstraintSpecSerializer(PublishedType):
    kind = serializers.ChoiceField(choices=["check", "unique"])
    name = StringField()
    fields = serializers.ListField(child=StringField(), required=False)  # type: ignore[assignment]  # a declared field; DRF's metaclass moves it off the class
    condition = serializers.DictField(required=False, help_text='Django lookups; {"F": "col"} refers to a column.')


class ModelOptionsSerializer(PublishedType):
    db_table = StringField(required=False)
    db_table_comment = StringField(required=False, allow_blank=True)
    verbose_name = StringField(required=False)
    verbose_name_plural = StringField(required=False)
    managed = BooleanField(required=False)
    ordering = serializers.ListField(child=StringField(), required=False)
    unique_together = serializers.ListField(child=serializers.ListField(child=StringField()), required=False)
    indexes = IndexSpecSerializer(many=True, required=False)
    constraints = ConstraintSpecSerializer(many=True, required=False)


class CreateModelSerializer(PublishedType):
    op = _op("CreateModel")
    name = StringField()
    fields = NamedFieldSerializer(many=True)  # type: ignore[assignment]  # a declared field; DRF's metaclass moves it off the class
    options = ModelOptionsSerializer(required=False)


class DeleteModelSerializer(PublishedType):
    op = _op("DeleteModel")
    name = StringField()


class RenameModelSerializer(PublishedType):
    op = _op("RenameModel")
    old_name = StringField()
    new_name = StringField()


class AlterModelTableSerializer(PublishedType):
    op = _op("AlterModelTable")
    name = StringField()
    table = StringField()


class AlterUniqueTogetherSerializer(PublishedType):
    op = _op("AlterUniqueTogether")
    name = StringField()
    unique_together = serializers.ListField(child=serializers.ListField(child=StringField()))


class AddFieldSerializer(PublishedType):
    op = _op("AddField")
    model_name = StringField()
    name = StringField()
    field = FieldSpecSerializer()
    preserve_default = BooleanField(required=False)


class RemoveFieldSerializer(PublishedType):
    op = _op("RemoveField")
    model_name = StringField()
    name = StringField()


class AlterFieldSerializer(PublishedType):
    op = _op("AlterField")
    model_name = StringField()
    name = StringField()
    field = FieldSpecSerializer()


class RenameFieldSerializer(PublishedType):
    op = _op("RenameField")
    model_name = StringField()
    old_name = StringField()
    new_name = StringField()


class AddIndexSerializer(PublishedType):
    op = _op("AddIndex")
    model_name = StringField()
    index = IndexSpecSerializer()


class AddIndexConcurrentlySerializer(PublishedType):
    op = _op("AddIndexConcurrently")
    model_name = StringField()
    index = IndexSpecSerializer()


class RemoveIndexSerializer(PublishedType):
    op = _op("RemoveIndex")
    model_name = StringField()
    name = StringField()


class RemoveIndexConcurrentlySerializer(PublishedType):
    op = _op("RemoveIndexConcurrently")
    model_name = StringField()
    name = StringField()


class AddConstraintSerializer(PublishedType):
    op = _op("AddConstraint")
    model_name = StringField()
    constraint = ConstraintSpecSerializer()


class AddConstraintNotValidSerializer(PublishedType):
    op = _op("AddConstraintNotValid")
    model_name = StringField()
    constraint = ConstraintSpecSerializer()


class RemoveConstraintSerializer(PublishedType):
    op = _op("RemoveConstraint")
    model_name = StringField()
    name = StringField()


class ValidateConstraintSerializer(PublishedType):
    op = _op("ValidateConstraint")
    model_name = StringField()
    name = StringField()


class RunSQLSerializer(PublishedType):
    op = _op("RunSQL")
    sql = StringField(help_text="SQL to run on the shadow (as an unprivileged role).")
    reverse_sql = StringField(required=False)
    elidable = BooleanField(required=False)


class BackfillSerializer(PublishedType):
    op = _op("Backfill")
    model = StringField(help_text="The model whose rows are set: 'app_label.ModelName', or 'ModelName' in the migration's app.")
    assignments = serializers.DictField(
        child=serializers.JSONField(allow_null=True),
        help_text="Field name -> expression. A JSON value is a Value; an object has one key naming the expression: "
        '{"F": "column"}, {"Value": ...}, {"Case": {"when": [{"condition": {...}, "then": ...}], "default": ...}}, '
        '{"Cast": {"expression": ..., "output_field": {field spec}}}, {"+": [a, b]} (also -, *, /), or a database '
        f"function with its arguments as a list: {', '.join(sorted(FUNCTIONS))}.",
    )
    filter = serializers.DictField(
        required=False, help_text='The rows to set, as Django lookups; {"F": "col"} refers to a column.'
    )
    batch_size = IntegerField(required=False, min_value=1, max_value=MAX_BATCH_SIZE, help_text="Rows per batch; default 1000.")
    order_by = StringField(
        required=False, help_text="The unique, non-null column batches are cut on (keyset pagination); default the primary key."
    )
    pause_ms = IntegerField(required=False, min_value=0, max_value=MAX_PAUSE_MS, help_text="Pause between batches; default 0.")
    parity = serializers.DictField(
        required=False, help_text="Django lookups matching the rows still to do: the backfill is complete when they count zero."
    )


OPERATION_SERIALIZERS = [
    CreateModelSerializer,
    DeleteModelSerializer,
    RenameModelSerializer,
    AlterModelTableSerializer,
    AlterUniqueTogetherSerializer,
    AddFieldSerializer,
    RemoveFieldSerializer,
    AlterFieldSerializer,
    RenameFieldSerializer,
    AddIndexSerializer,
    AddIndexConcurrentlySerializer,
    RemoveIndexSerializer,
    RemoveIndexConcurrentlySerializer,
    AddConstraintSerializer,
    AddConstraintNotValidSerializer,
    RemoveConstraintSerializer,
    ValidateConstraintSerializer,
    RunSQLSerializer,
    BackfillSerializer,
]

OPERATION_UNION = PolymorphicProxySerializer(
    component_name="Operation",
    # Keyed by each member's `op` value: a plain list leaves spectacular a mapping of null keys.
    serializers={
        next(iter(cast(serializers.ChoiceField, serializer().fields["op"]).choices)): serializer
        for serializer in OPERATION_SERIALIZERS
    },
    resource_type_field_name="op",
    many=False,
)


# One instance per operation type, shared by every request: checking keeps no state on it.
OPERATION_TYPES: dict[str, serializers.Serializer] = {op: serializer() for op, serializer in OPERATION_UNION.serializers.items()}


@extend_schema_field(OPERATION_UNION)
class OperationField(serializers.JSONField):
    """One operation document, checked against the published type of its `op`.

    The document is kept as it was sent: the intake reads it again, with the rules of every
    operation that a type cannot state.
    """

    default_error_messages = {
        "not_an_object": "An operation is an object with an 'op'.",
        "unknown_op": "Unknown operation {op}; known: {known}.",
    }

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            self.fail("not_an_object")
        op = data.get("op")
        operation_type = OPERATION_TYPES.get(op) if isinstance(op, str) else None
        if operation_type is None:
            message = self.error_messages["unknown_op"].format(op=repr(op)[:60], known=", ".join(OPERATION_TYPES))
            raise serializers.ValidationError({"op": [message]})
        return operation_type.run_validation(data)


class MigrationDocumentSerializer(serializers.Serializer):
    app_label = StringField()
    name = StringField(required=False, help_text="Defaults to the next number and a name Django would suggest.")
    atomic = BooleanField(required=False, default=True)
    operations = serializers.ListField(child=OperationField(), min_length=1)
