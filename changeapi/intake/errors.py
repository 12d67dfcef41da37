"""Located intake errors: what is wrong with a submission and exactly where."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Location:
    """Where a problem is: a JSON pointer into the request body, or a file position."""

    pointer: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


class IntakeError(Exception):
    """A submission that cannot be turned into migration operations.

    Raised by every intake parser; the API renders it as a 400 problem+json with the
    location, and nothing is stored.
    """

    def __init__(self, message: str, location: Location | None = None, *, suggestion: dict[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location or Location()
        # What to add to the request to get past the refusal, in the request's own shape.
        self.suggestion = suggestion

    def __str__(self) -> str:
        where = self.location
        if where.file:
            return f"{where.file}:{where.line}:{where.column}: {self.message}"
        if where.pointer:
            return f"{where.pointer}: {self.message}"
        return self.message


class IntakeBoundExceeded(IntakeError):
    """A value of submitted source past a size bound (a number, string or collection).

    Refused where it is built, even in a name nothing reads, so no hostile file makes the
    service hold or compute it.
    """


class IntakeLimitExceeded(IntakeError):
    """A submission larger than a configured limit; the problem names the setting and its value."""

    status = 413

    def __init__(self, message: str, *, setting: str, value: int, location: Location | None = None) -> None:
        super().__init__(message, location)
        self.setting = setting
        self.value = value


class IntakeBudgetExceeded(IntakeLimitExceeded):
    """Submitted source that costs more to read than its budget (steps, call depth, CPU time).

    Not too large (413) but too costly to interpret: 422, with the budget named.
    """

    status = 422


@dataclass
class Problem:
    """One located refusal of an upload, with the migrations that cannot be read because of it."""

    message: str
    location: Location
    blocks: list[str]

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {"detail": self.message, **self.location.as_dict()}
        if self.blocks:
            found["blocks"] = self.blocks
        return found


class IntakeErrors(IntakeError):
    """Every refusal of one upload at once (up to a cap), so a user fixes them in one round.

    `total` counts all refusals, also those past the cap; `summary` says what they are when
    they are not one per file (several uses of one name a project's engine cannot run).
    """

    def __init__(self, problems: list[Problem], total: int, *, summary: str | None = None) -> None:
        blocked = {label for problem in problems for label in problem.blocks}
        if total == 1 and problems:
            message = problems[0].message
        else:
            message = summary or f"{total} files cannot be read"
            if blocked:
                message += f"; {len(blocked)} other migration{'s' if len(blocked) != 1 else ''} depend on them"
            message += f". The first: {problems[0].message}" if problems else "."
        super().__init__(message, problems[0].location if problems else None)
        self.problems = problems
        self.total = total
