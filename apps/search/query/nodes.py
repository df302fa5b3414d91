"""The query AST: immutable nodes carrying character offsets into the query text."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Node:
    """Base node: `pos` and `length` locate it in the query (characters)."""

    pos: int = field(compare=False)
    length: int = field(compare=False)


@dataclass(frozen=True)
class TagTerm(Node):
    """A tag name or pattern; `mode` is plain, tag (no type prefix), direct or unaliased.

    `text` is unescaped; `colon` is the index of its first unquoted `:` (-1 if none) and
    `stars` the indexes of unquoted `*` (wildcards).
    """

    mode: str = "plain"
    text: str = ""
    colon: int = -1
    stars: tuple[int, ...] = ()
    raw: str = field(default="", compare=False)

    @property
    def is_wildcard(self) -> bool:
        """True when the term has at least one unquoted `*`."""
        return bool(self.stars)


@dataclass(frozen=True)
class Qualifier(Node):
    """`name:value`; `parsed` is the validated value (shape depends on the qualifier)."""

    name: str = ""
    value: str = ""
    parsed: Any = None
    value_pos: int = field(default=0, compare=False)
    raw: str = field(default="", compare=False)


@dataclass(frozen=True)
class Not(Node):
    """Negation of one operand."""

    child: Node | None = None


@dataclass(frozen=True)
class And(Node):
    """Every operand must match."""

    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Or(Node):
    """At least one operand must match."""

    children: tuple[Node, ...] = ()


def canonical(node: Node | None) -> str:
    """A position-free text form of the tree (equal trees, equal text)."""
    if node is None:
        return "all"
    if isinstance(node, TagTerm):
        return f"t({node.mode},{node.text!r},{node.colon},{node.stars})"
    if isinstance(node, Qualifier):
        return f"q({node.name},{node.value!r})"
    if isinstance(node, Not):
        return f"not({canonical(node.child)})"
    if isinstance(node, And | Or):
        name = "and" if isinstance(node, And) else "or"
        return f"{name}({','.join(canonical(c) for c in node.children)})"
    raise TypeError(type(node))


def ast_hash(node: Node | None, bind: str = "") -> str:
    """Short hash binding cursors to one query (and to the caller's extra filters)."""
    return hashlib.sha256(f"{canonical(node)}|{bind}".encode()).hexdigest()[:20]


def walk(node: Node | None) -> list[Node]:
    """Every node in source order (pre-order)."""
    out: list[Node] = []
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        out.append(current)
        if isinstance(current, Not) and current.child is not None:
            stack.append(current.child)
        elif isinstance(current, And | Or):
            stack.extend(reversed(current.children))
    return out
