"""Binding an access pattern's placeholders to sample values, and locating what is wrong in its SQL."""

from __future__ import annotations

import pytest

from changeapi.dryrun.access_patterns import PatternError, bind_placeholders
from changeapi.dryrun.access_patterns.placeholders import argument_text


def error_of(sql: str, params: dict) -> dict:
    with pytest.raises(PatternError) as raised:
        bind_placeholders(sql, params)
    return raised.value.as_dict()


def test_named_placeholders_become_numbered_and_a_repeated_name_keeps_its_number():
    bound = bind_placeholders("SELECT * FROM t WHERE a = %(x)s AND b = %(y)s OR c = %(x)s", {"x": 1, "y": "b"})

    assert bound.text == "SELECT * FROM t WHERE a = $1 AND b = $2 OR c = $1"
    assert (bound.names, bound.values) == (["x", "y"], [1, "b"])


def test_positional_placeholders_take_their_values_by_position():
    bound = bind_placeholders("SELECT * FROM t WHERE a = %s AND b = %s", {"1": 10, "2": 20})

    assert bound.text == "SELECT * FROM t WHERE a = $1 AND b = $2"
    assert bound.values == [10, 20]


def test_numbered_placeholders_are_kept_as_written():
    bound = bind_placeholders("SELECT * FROM t WHERE a = $2 AND b = $1", {"1": "x", "2": "y"})

    assert bound.text == "SELECT * FROM t WHERE a = $2 AND b = $1"
    assert bound.values == ["x", "y"]


def test_placeholders_inside_strings_names_comments_and_dollar_quotes_are_text():
    sql = "SELECT '%s', \"%s\", $$ $1 ; $$, a$1 -- %s ;\nFROM t /* $1 ; */ WHERE a = %(a)s"

    bound = bind_placeholders(sql, {"a": 1})

    assert bound.text == sql.replace("%(a)s", "$1")
    assert bound.names == ["a"]


def test_doubled_percent_is_one_percent_with_percent_style_placeholders():
    bound = bind_placeholders("SELECT a %% 2 FROM t WHERE b LIKE 'x%%' AND c = %(c)s", {"c": 1})

    assert bound.text == "SELECT a % 2 FROM t WHERE b LIKE 'x%' AND c = $1"


def test_one_trailing_semicolon_is_allowed_and_a_second_statement_is_not():
    assert bind_placeholders("SELECT 1; -- done\n", {}).text == "SELECT 1"
    assert error_of("SELECT 1;\nDELETE FROM t", {}) == {
        "detail": "an access pattern is one statement: remove the text after ';'",
        "pointer": "/sql",
        "line": 1,
        "column": 9,
    }


def test_mixing_placeholder_styles_is_located():
    assert error_of("SELECT $1,\n  %(a)s", {"1": 1, "a": 2})["line"] == 2


def test_an_unterminated_string_is_located_at_its_start():
    assert error_of("SELECT 1\nWHERE a = 'x", {}) == {"detail": "unterminated string", "pointer": "/sql", "line": 2, "column": 11}


def test_a_missing_value_points_at_params_and_an_unused_one_at_itself():
    assert error_of("SELECT %(a)s", {})["pointer"] == "/params"
    assert error_of("SELECT %(a)s", {"a": 1, "b": 2}) == {"detail": "the SQL has no placeholder for 'b'", "pointer": "/params/b"}


def test_positions_in_the_converted_sql_map_back_to_the_submitted_text():
    bound = bind_placeholders("SELECT *\nFROM t WHERE a = %(customer_id)s AND bogus", {"customer_id": 1})

    position = bound.text.index("bogus") + 1
    assert bound.location(position) == (2, 38)


def test_sample_values_are_sent_as_untyped_text():
    assert [argument_text(v) for v in (None, True, 42, 1.5, "x", [1, None, 'a"b'], {"k": 1})] == [
        None,
        "true",
        "42",
        "1.5",
        "x",
        '{"1",NULL,"a\\"b"}',
        '{"k": 1}',
    ]
