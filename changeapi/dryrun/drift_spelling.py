"""What MySQL and MariaDB spell differently in their catalogs, written one way before a drift
comparison.

A MySQL project's shadow may be a MariaDB server (or the other way round), and the two
describe the same schema in other words: MariaDB writes integer display widths (`int(11)`)
that MySQL 8.0.19+ leaves out, quotes a literal column default (`'new'`, where MySQL writes
`new`) and writes `NULL` for "no default", and MySQL wraps a check clause in parentheses.
Only these are rewritten, on both sides alike, so what differs after is the schema itself.
"""

from __future__ import annotations

import re
from typing import Any

# Display widths mean nothing for storage; `tinyint(1)` is what both write for a boolean.
_INTEGER_WIDTH = re.compile(r"^(tinyint|smallint|mediumint|int|integer|bigint)\((\d+)\)", re.IGNORECASE)


def mysql_type(column_type: str) -> str:
    """`int(11) unsigned` -> `int unsigned`; `tinyint(1)` is kept (a boolean on both)."""
    found = _INTEGER_WIDTH.match(column_type)
    if found is None or (found.group(1).lower() == "tinyint" and found.group(2) == "1"):
        return column_type
    return found.group(1) + column_type[found.end() :]


def mysql_default(default: str | None) -> str | None:
    """MariaDB's `NULL` (no default) as None, and its quoted literal `'it''s'` as MySQL writes it, `it's`."""
    if default is None or default == "NULL":
        return None
    if len(default) >= 2 and default[0] == default[-1] == "'":
        return default[1:-1].replace("''", "'")
    return default


def _outer_parentheses(clause: str) -> bool:
    """Whether the first parenthesis closes only at the end: `(a) and (b)` is not wrapped."""
    if not (clause.startswith("(") and clause.endswith(")")):
        return False
    depth = 0
    for position, char in enumerate(clause):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and position < len(clause) - 1:
            return False
    return True


def mysql_check(definition: str) -> str:
    """`CHECK ((`total` >= 0))` and `CHECK (`total` >= 0)` both as `CHECK (total >= 0)`."""
    if not definition.startswith("CHECK (") or not definition.endswith(")"):
        return definition
    clause = definition[len("CHECK (") : -1].replace("`", "").strip()
    while _outer_parentheses(clause):
        clause = clause[1:-1].strip()
    return f"CHECK ({clause})"


def mysql_catalog_spelled(data: dict[str, Any]) -> dict[str, Any]:
    """A MySQL/MariaDB catalog (the query's JSON) with the spellings above made one."""
    tables = [
        {
            **table,
            "columns": [
                {**column, "type": mysql_type(column["type"]), "default": mysql_default(column.get("default"))}
                for column in table.get("columns") or ()
            ],
        }
        for table in data.get("tables") or ()
    ]
    constraints = [
        {**k, "definition": mysql_check(k["definition"])} if k.get("type") == "check" else k
        for k in data.get("constraints") or ()
    ]
    return {**data, "tables": tables, "constraints": constraints}
