"""Tests of the Python-source intake: migration files and models source read, never run."""
