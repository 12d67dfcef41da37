"""Parse submitted Python text into an AST within size, depth and node-count limits."""

from __future__ import annotations

import ast
import io
import re
import warnings
from dataclasses import dataclass

from changeapi.intake.errors import IntakeError, IntakeLimitExceeded, Location

from .config import SourceLimits

# Builtins that no submitted file may name, read or not: each runs or reaches code.
REFUSED_BUILTINS = frozenset(
    {
        "__import__",
        "__builtins__",
        "__loader__",
        "__spec__",
        "eval",
        "exec",
        "compile",
        "open",
        "globals",
        "locals",
        "vars",
        "setattr",
        "delattr",
        "breakpoint",
        "input",
        "type",
        "object",
        "super",
        "memoryview",
        "help",
        "exit",
        "quit",
        "classmethod",
        "staticmethod",
        "property",
    }
)


# What a forbidden construct needs in a file's text: an identifier that is a refused builtin,
# a dunder (`__`), or `:=`. In ASCII text every identifier is spelled as it is named (Python
# normalises other characters with NFKC, which can spell `eval` without those letters), so
# an ASCII file with none of these has no forbidden construct, and its tree is not searched.
_FORBIDDEN_TEXT = re.compile(r"__|:=|\b(?:" + "|".join(re.escape(name) for name in sorted(REFUSED_BUILTINS)) + r")\b", re.ASCII)


def may_hold_forbidden(source: str) -> bool:
    """Whether the text could hold a forbidden construct (`is_forbidden`); False is certain."""
    return not source.isascii() or _FORBIDDEN_TEXT.search(source) is not None


@dataclass(frozen=True)
class ParsedSource:
    """A file's syntax tree, and whether any construct the interpreter refuses wherever it
    appears (`is_forbidden`) is anywhere in it: found by the limits walk that visits every
    node anyway, so a file without one is not walked again per expression."""

    tree: ast.Module
    forbidden_free: bool


def is_forbidden(node: ast.AST) -> bool:
    """A dunder attribute, a refused builtin's name, or an assignment expression."""
    if isinstance(node, ast.Attribute):
        return node.attr.startswith("__")
    if isinstance(node, ast.Name):
        return node.id in REFUSED_BUILTINS
    return isinstance(node, ast.NamedExpr)


def node_location(filename: str, node: ast.AST | None) -> Location:
    """The 1-based line and column of a node, as an editor shows them."""
    line = getattr(node, "lineno", None) or 1
    column = getattr(node, "col_offset", None)
    return Location(file=filename, line=line, column=(column or 0) + 1)


def parse_source(source: str, *, filename: str, limits: SourceLimits) -> ParsedSource:
    """Parse `source` or raise a located IntakeError; never run any of it.

    The size check comes first so that the parser never sees more than the limit, and the
    parser's own stack limits (which surface as RecursionError or MemoryError) are reported as
    what they are: too deeply nested input.
    """
    if not isinstance(source, str):
        raise IntakeError("The file content must be text.", Location(file=filename, line=1, column=1))
    size = len(source.encode("utf-8", errors="surrogatepass"))
    if size > limits.max_bytes:
        raise IntakeLimitExceeded(
            f"The file is {size} bytes; the limit is {limits.max_bytes} bytes.",
            setting="SCHEMAGATE_MAX_SOURCE_BYTES",
            value=limits.max_bytes,
            location=Location(file=filename, line=1, column=1),
        )
    try:
        with warnings.catch_warnings():
            # Warnings about odd literals are the submitter's business, not the service log's.
            warnings.simplefilter("ignore")
            tree = ast.parse(source, filename=filename, mode="exec", type_comments=False)
    except SyntaxError as exc:
        raise IntakeError(
            f"Python syntax error: {exc.msg}.",
            Location(file=filename, line=exc.lineno or 1, column=exc.offset or 1),
        ) from None
    except (RecursionError, MemoryError):
        raise IntakeError("The file is nested too deeply to be read.", Location(file=filename, line=1, column=1)) from None
    except ValueError as exc:
        # e.g. source containing NUL characters
        raise IntakeError(f"The file cannot be read as Python: {exc}.", Location(file=filename, line=1, column=1)) from None
    forbidden_found = check_tree_limits(tree, filename=filename, limits=limits, search=may_hold_forbidden(source))
    return ParsedSource(tree=tree, forbidden_free=not forbidden_found)


def check_tree_limits(tree: ast.AST, *, filename: str, limits: SourceLimits, search: bool = True) -> bool:
    """Refuse trees deeper or larger than the limits; iterative, so it cannot overflow itself.

    Returns whether a forbidden construct (`is_forbidden`) is anywhere in the tree; with
    `search` False (the file's text cannot hold one, `may_hold_forbidden`), that none is.

    The tree is walked one depth at a time (every node of every file a history uploads is
    visited, so without a stack entry per node); a tree past a limit is walked again in
    order, to refuse it at the first node past it (`_refuse_past_limits`).
    """
    forbidden = False
    count = 0
    depth = 0
    level: list[ast.AST] = [tree]
    while level:
        count += len(level)
        if count > limits.max_nodes or depth > limits.max_depth:
            _refuse_past_limits(tree, filename=filename, limits=limits)
        if search and not forbidden:
            forbidden = any(is_forbidden(node) for node in level if isinstance(node, _SUSPECTS))
        below: list[ast.AST] = []
        for node in level:
            # The children, as ast.iter_child_nodes finds them, without its generators.
            for name in node._fields:
                value = getattr(node, name, None)
                if isinstance(value, list):
                    below.extend([item for item in value if isinstance(item, ast.AST)])
                elif isinstance(value, ast.AST):
                    below.append(value)
        level = below
        depth += 1
    return forbidden


def _refuse_past_limits(tree: ast.AST, *, filename: str, limits: SourceLimits) -> None:
    """Walk the tree depth first, as a reader would, and refuse it at the first node past the
    node count or the depth limit."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > limits.max_nodes:
            raise IntakeLimitExceeded(
                f"The file has more than {limits.max_nodes} syntax nodes.",
                setting="SCHEMAGATE_MAX_AST_NODES",
                value=limits.max_nodes,
                location=node_location(filename, node),
            )
        if depth > limits.max_depth:
            raise IntakeLimitExceeded(
                f"The file nests expressions more than {limits.max_depth} levels deep.",
                setting="SCHEMAGATE_MAX_AST_DEPTH",
                value=limits.max_depth,
                location=node_location(filename, node),
            )
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                stack.extend((item, depth + 1) for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                stack.append((value, depth + 1))


_SUSPECTS = (ast.Attribute, ast.Name, ast.NamedExpr)


def source_lines(source: str) -> list[str]:
    """The lines of a file with their ends, split as the parser splits them (on \\n, \\r and
    \\r\\n only), as `ast.get_source_segment` does, without its per-character loop."""
    return io.StringIO(source, newline="").readlines()


def source_segment(lines: list[str], node: ast.AST) -> str:
    """The text of `node` ("" if it has no end position): `ast.get_source_segment` on the
    lines of `source_lines`, split once per file rather than once per segment."""
    end_line, end_column = getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None)
    if end_line is None or end_column is None:
        return ""
    first, column = node.lineno - 1, node.col_offset  # type: ignore[attr-defined]
    last = end_line - 1
    if first == last:
        return lines[first].encode()[column:end_column].decode()
    head = lines[first].encode()[column:].decode()
    tail = lines[last].encode()[:end_column].decode()
    return "".join([head, *lines[first + 1 : last], tail])


def is_docstring(statement: ast.stmt) -> bool:
    """A bare string statement: a docstring, which binds and runs nothing."""
    return (
        isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str)
    )
