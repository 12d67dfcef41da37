"""Intake: turn a submission (operations JSON, migration files, models source) into a Plan."""
