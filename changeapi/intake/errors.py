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

    def __init__(self, message: str, location: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.location = location or Location()

    def __str__(self) -> str:
        where = self.location
        if where.file:
            return f"{where.file}:{where.line}:{where.column}: {self.message}"
        if where.pointer:
            return f"{where.pointer}: {self.message}"
        return self.message


class IntakeLimitExceeded(IntakeError):
    """A submission larger than a configured limit; the problem names the setting and its value."""

    def __init__(self, message: str, *, setting: str, value: int, location: Location | None = None) -> None:
        super().__init__(message, location)
        self.setting = setting
        self.value = value
