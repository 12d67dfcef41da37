"""How production column statistics shape a seeded column: NULL share, widths, cardinality, order.

Each figure turns into a SQL expression in the row number `g` (1..n) of the seeding INSERT.
Where a figure was not uploaded the seeder keeps its defaults (docs/table-stats.md): one row
in ten NULL in a nullable column that is not unique, the type's own spread of values, text
of 26 to 65 characters, rows in the order of `g`. Constraints always win over statistics: a
NOT NULL column is never NULL, a unique column stays unique whatever `n_distinct` says, text
never exceeds its column's maximum length.
"""

from __future__ import annotations

from dataclasses import dataclass

from changeapi.shadow.column_stats import ColumnFigures

SORTED_CORRELATION = 0.5
"""At |correlation| from this up, rows are inserted in value order (descending when negative);
below it, in an order unrelated to their values."""

_NULL_MODULUS = 1_000_000
_NULL_STRIDE = 435_761  # coprime with the modulus: g * stride % modulus visits every residue
_SHUFFLE_PRIMES = (7919, 104_729, 1_299_709)


@dataclass(frozen=True)
class ColumnShape:
    """What the seeder makes of one column's uploaded figures for a table of `rows` rows.

    None in a field means "the default": the figure was not uploaded, or was unknown.
    """

    null_frac: float | None = None
    distinct: int | None = None
    ordered: bool | None = None
    descending: bool = False
    width: int | None = None


def column_shape(figures: ColumnFigures, rows: int) -> ColumnShape:
    """The shape `figures` ask for at `rows` seeded rows.

    A fraction `n_distinct` (negative) keeps its ratio at the seeded size; an absolute count is
    kept, up to the number of rows.
    """
    distinct = figures.distinct_values(rows)
    ordered = None if figures.correlation is None else abs(figures.correlation) >= SORTED_CORRELATION
    return ColumnShape(
        null_frac=figures.null_frac,
        distinct=min(distinct, rows) if distinct is not None and rows > 0 else None,
        ordered=ordered,
        descending=bool(ordered) and (figures.correlation or 0.0) < 0,
        width=figures.avg_width,
    )


def _shuffle_prime(count: int) -> int:
    return next(p for p in _SHUFFLE_PRIMES if count % p)


def key_expression(shape: ColumnShape, rows: int, *, unique: bool) -> str | None:
    """An expression in `g` numbering the column's distinct values (1..distinct), laid out in
    the shape's order; None when the shape leaves the default values in place.

    A unique column numbers every row apart (its `distinct` is ignored); sorted rows get
    consecutive runs of one value each, shuffled rows (also the default when only the count
    is known) cycle through them in an order unrelated to `g`.
    """
    distinct = None if unique else shape.distinct
    if distinct is None and shape.ordered is None:
        return None
    count = distinct if distinct is not None else rows
    if count <= 0:
        return None
    if shape.ordered is False or (shape.ordered is None and distinct is not None):
        return f"(1 + ((g * {_shuffle_prime(count)}) % {count}))"
    if distinct is None:
        return f"({rows} + 1 - g)" if shape.descending else "g"
    ascending = f"(1 + ((g - 1) * {count}) / {max(rows, 1)})"
    return f"({count} + 1 - {ascending})" if shape.descending else ascending


def null_condition(shape: ColumnShape) -> str | None:
    """The condition in `g` under which the column is NULL, for `null_frac` of the rows; None
    when no row is NULL."""
    if shape.null_frac is None or shape.null_frac <= 0:
        return None
    threshold = round(shape.null_frac * _NULL_MODULUS)
    if threshold <= 0:
        return None
    return f"(g * {_NULL_STRIDE}) % {_NULL_MODULUS} < {threshold}"


DEFAULT_TEXT_WIDTH = 46
"""Bytes of a seeded text value when only its cardinality or order was uploaded: about the
mean of the default 26 to 65 characters."""


def text_expression(key: str, width: int | None, max_length: int | None, *, digits: int) -> str:
    """Text of about `width` bytes (pg_stats counts a short value's 1-byte header) unique per
    `key` and sorting as the key does: the key zero-padded to `digits`, then hex digits, each
    value within a quarter of the mean length either way and never over `max_length`."""
    mean = max((DEFAULT_TEXT_WIDTH if width is None else width) - 1, 0)
    spread = mean // 4
    length = f"({mean - spread} + ({key} % {2 * spread + 1}))" if spread else str(mean)
    if max_length is not None:
        length = f"least({length}, {max_length})"
    prefix = f"lpad(({key})::text, {max(digits, 1)}, '0') || '-'"
    # The key stays whole even when the mean is shorter than it: uniqueness beats width.
    fill = f"repeat(md5(({key})::text), {mean // 32 + 2})"
    whole = f"greatest({length}, length({prefix}))"
    if max_length is not None:
        whole = f"least({whole}, {max_length})"
    return f"left({prefix} || {fill}, ({whole})::int)"
