"""Data-migration steps: submitted `RunPython` code kept as text for reviewers and never run."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.migrations.operations.special import RunPython


@dataclass(frozen=True)
class SubmittedCode:
    """One function a `RunPython` names: its name and source text as submitted.

    `source` is None when the function is defined outside the submitted file (then only its
    dotted name is known). Calling it does nothing: it stands where Django expects a callable.
    """

    name: str
    source: str | None

    def __call__(self, apps: Any, schema_editor: Any) -> None:
        return None


class DataMigrationStep(RunPython):
    """A `RunPython` from a submission: listed in reports as "not executed".

    The dry-run applies the schema operations around it and skips it, without even rendering
    the historical models Django would hand to the code; reviewers read `source_code`.
    """

    def __init__(
        self,
        code: SubmittedCode | Any,
        reverse_code: SubmittedCode | Any | None = None,
        atomic: bool | None = None,
        hints: dict[str, Any] | None = None,
        elidable: bool = False,
    ) -> None:
        super().__init__(code, reverse_code, atomic=atomic, hints=hints, elidable=elidable)

    @property
    def source_code(self) -> str | None:
        return self.code.source if isinstance(self.code, SubmittedCode) else None

    @property
    def reverse_source_code(self) -> str | None:
        return self.reverse_code.source if isinstance(self.reverse_code, SubmittedCode) else None

    @property
    def code_name(self) -> str:
        return _name_of(self.code)

    @property
    def reverse_code_name(self) -> str | None:
        return None if self.reverse_code is None else _name_of(self.reverse_code)

    def deconstruct(self) -> tuple[str, list[Any], dict[str, Any]]:
        _, args, kwargs = super().deconstruct()
        if self.elidable:
            kwargs["elidable"] = True
        return ("RunPython", list(args), kwargs)

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        # Submitted Python is never run; the report lists this step as not executed.
        return None

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        if self.reverse_code is None:
            raise NotImplementedError("You cannot reverse this operation")
        return None

    def describe(self) -> str:
        return f"Data migration step {self.code_name} (not executed)"


def _name_of(code: Any) -> str:
    if isinstance(code, SubmittedCode):
        return code.name
    if code is RunPython.noop:
        return "RunPython.noop"
    return getattr(code, "__qualname__", repr(code))
