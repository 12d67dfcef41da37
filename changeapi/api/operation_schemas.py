"""Typed OpenAPI schemas of the `operations` form, so generated clients get real classes.

Each operation is its own component with a required single-value `op`, so clients that try
union members in order still decode each document to its own type. Validation itself is
done by the intake (`changeapi.intake.operations_json`), which reports JSON pointers.
"""

from __future__ import annotations

from typing import cast

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from changeapi.intake.operations_json import DEFAULT_CALLABLES, FIELD_TYPES, ON_DELETE


def _op(name: str) -> serializers.ChoiceField:
    return serializers.ChoiceField(choices=[name], help_text=f"Always '{name}'.")


class FieldSpecSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=sorted(FIELD_TYPES))
    null = serializers.BooleanField(required=False)
    blank = serializers.BooleanField(required=False)
    default = serializers.JSONField(required=False, help_text="A JSON value used as the field's default.")
    default_callable = serializers.ChoiceField(choices=sorted(DEFAULT_CALLABLES), required=False)
    db_default = serializers.JSONField(required=False, help_text="A JSON value used as the database default.")
    unique = serializers.BooleanField(required=False)
    db_index = serializers.BooleanField(required=False)
    primary_key = serializers.BooleanField(required=False)
    max_length = serializers.IntegerField(required=False, min_value=1)
    max_digits = serializers.IntegerField(required=False, min_value=1)
    decimal_places = serializers.IntegerField(required=False, min_value=0)
    db_column = serializers.CharField(required=False)
    db_comment = serializers.CharField(required=False)
    auto_now = serializers.BooleanField(required=False)
    auto_now_add = serializers.BooleanField(required=False)
    to = serializers.CharField(required=False, help_text="Related model, 'app_label.ModelName'.")
    on_delete = serializers.ChoiceField(choices=list(ON_DELETE), required=False)
    related_name = serializers.CharField(required=False)
    db_constraint = serializers.BooleanField(required=False)
    to_field = serializers.CharField(required=False)
    choices = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()), required=False)
    size = serializers.IntegerField(required=False)
    base_field = serializers.DictField(required=False, help_text="For ArrayField: the element's field spec.")


class NamedFieldSerializer(serializers.Serializer):
    name = serializers.CharField()
    field = FieldSpecSerializer()


class IndexSpecSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=30)
    fields = serializers.ListField(child=serializers.CharField(), min_length=1)  # type: ignore[assignment]  # a declared field; DRF's metaclass moves it off the class
    opclasses = serializers.ListField(child=serializers.CharField(), required=False)
    condition = serializers.DictField(required=False, help_text='Django lookups, e.g. {"status": "open"}.')


class ConstraintSpecSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["check", "unique"])
    name = serializers.CharField()
    fields = serializers.ListField(child=serializers.CharField(), required=False)  # type: ignore[assignment]  # a declared field; DRF's metaclass moves it off the class
    condition = serializers.DictField(required=False, help_text='Django lookups; {"F": "col"} refers to a column.')


class ModelOptionsSerializer(serializers.Serializer):
    db_table = serializers.CharField(required=False)
    ordering = serializers.ListField(child=serializers.CharField(), required=False)
    unique_together = serializers.ListField(child=serializers.ListField(child=serializers.CharField()), required=False)
    indexes = IndexSpecSerializer(many=True, required=False)
    constraints = ConstraintSpecSerializer(many=True, required=False)


class CreateModelSerializer(serializers.Serializer):
    op = _op("CreateModel")
    name = serializers.CharField()
    fields = NamedFieldSerializer(many=True)  # type: ignore[assignment]  # a declared field; DRF's metaclass moves it off the class
    options = ModelOptionsSerializer(required=False)


class DeleteModelSerializer(serializers.Serializer):
    op = _op("DeleteModel")
    name = serializers.CharField()


class RenameModelSerializer(serializers.Serializer):
    op = _op("RenameModel")
    old_name = serializers.CharField()
    new_name = serializers.CharField()


class AlterModelTableSerializer(serializers.Serializer):
    op = _op("AlterModelTable")
    name = serializers.CharField()
    table = serializers.CharField()


class AlterUniqueTogetherSerializer(serializers.Serializer):
    op = _op("AlterUniqueTogether")
    name = serializers.CharField()
    unique_together = serializers.ListField(child=serializers.ListField(child=serializers.CharField()))


class AddFieldSerializer(serializers.Serializer):
    op = _op("AddField")
    model_name = serializers.CharField()
    name = serializers.CharField()
    field = FieldSpecSerializer()
    preserve_default = serializers.BooleanField(required=False)


class RemoveFieldSerializer(serializers.Serializer):
    op = _op("RemoveField")
    model_name = serializers.CharField()
    name = serializers.CharField()


class AlterFieldSerializer(serializers.Serializer):
    op = _op("AlterField")
    model_name = serializers.CharField()
    name = serializers.CharField()
    field = FieldSpecSerializer()


class RenameFieldSerializer(serializers.Serializer):
    op = _op("RenameField")
    model_name = serializers.CharField()
    old_name = serializers.CharField()
    new_name = serializers.CharField()


class AddIndexSerializer(serializers.Serializer):
    op = _op("AddIndex")
    model_name = serializers.CharField()
    index = IndexSpecSerializer()


class AddIndexConcurrentlySerializer(serializers.Serializer):
    op = _op("AddIndexConcurrently")
    model_name = serializers.CharField()
    index = IndexSpecSerializer()


class RemoveIndexSerializer(serializers.Serializer):
    op = _op("RemoveIndex")
    model_name = serializers.CharField()
    name = serializers.CharField()


class RemoveIndexConcurrentlySerializer(serializers.Serializer):
    op = _op("RemoveIndexConcurrently")
    model_name = serializers.CharField()
    name = serializers.CharField()


class AddConstraintSerializer(serializers.Serializer):
    op = _op("AddConstraint")
    model_name = serializers.CharField()
    constraint = ConstraintSpecSerializer()


class AddConstraintNotValidSerializer(serializers.Serializer):
    op = _op("AddConstraintNotValid")
    model_name = serializers.CharField()
    constraint = ConstraintSpecSerializer()


class RemoveConstraintSerializer(serializers.Serializer):
    op = _op("RemoveConstraint")
    model_name = serializers.CharField()
    name = serializers.CharField()


class ValidateConstraintSerializer(serializers.Serializer):
    op = _op("ValidateConstraint")
    model_name = serializers.CharField()
    name = serializers.CharField()


class RunSQLSerializer(serializers.Serializer):
    op = _op("RunSQL")
    sql = serializers.CharField(help_text="SQL to run on the shadow (as an unprivileged role).")
    reverse_sql = serializers.CharField(required=False)
    elidable = serializers.BooleanField(required=False)


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


@extend_schema_field(OPERATION_UNION)
class OperationField(serializers.JSONField):
    """One operation document; checked by the intake, which knows every operation's rules."""


class MigrationDocumentSerializer(serializers.Serializer):
    app_label = serializers.CharField()
    name = serializers.CharField(required=False, help_text="Defaults to the next number and a name Django would suggest.")
    atomic = serializers.BooleanField(required=False, default=True)
    operations = serializers.ListField(child=OperationField(), min_length=1)
