"""Parse submitted Python text into an AST within size, depth and node-count limits."""

from __future__ import annotations

import ast
import warnings

from changeapi.intake.errors import IntakeError, IntakeLimitExceeded, Location

from .config import SourceLimits


def node_location(filename: str, node: ast.AST | None) -> Location:
    """The 1-based line and column of a node, as an editor shows them."""
    line = getattr(node, "lineno", None) or 1
    column = getattr(node, "col_offset", None)
    return Location(file=filename, line=line, column=(column or 0) + 1)


def parse_source(source: str, *, filename: str, limits: SourceLimits) -> ast.Module:
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
    check_tree_limits(tree, filename=filename, limits=limits)
    return tree


def check_tree_limits(tree: ast.AST, *, filename: str, limits: SourceLimits) -> None:
    """Refuse trees deeper or larger than the limits; iterative, so it cannot overflow itself."""
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
        # The children, as ast.iter_child_nodes finds them, without its generators: this walk
        # visits every node of every file a history uploads.
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                stack.extend((item, depth + 1) for item in value if isinstance(item, ast.AST))
            elif isinstance(value, ast.AST):
                stack.append((value, depth + 1))


def is_docstring(statement: ast.stmt) -> bool:
    """A bare string statement: a docstring, which binds and runs nothing."""
    return (
        isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str)
    )
