"""Recursive-descent parser for the query language (docs/query-language.md#syntax, #limits).

    query    = [ or_expr ] ;
    or_expr  = and_expr { ( "or" | "|" ) and_expr } ;
    and_expr = factor { [ "and" ] factor } ;
    factor   = "-" primary | "~" primary | primary ;
    primary  = "(" or_expr ")" | qualifier ":" value | tag_term ;

`~` operands of one AND level form one OR group (`~a ~b c` = `(a or b) c`). Guard rails and
singleton rules are checked here, so every error carries the offending token's offsets.
"""

from __future__ import annotations

from apps.search import extensions
from apps.search.query.config import int_knob
from apps.search.query.errors import QueryError
from apps.search.query.lexer import Token, tokenize
from apps.search.query.nodes import And, Node, Not, Or, Qualifier, TagTerm
from apps.search.query.qualifiers import (
    NOT_AVAILABLE,
    SINGLETONS,
    SPECS,
    TAG_QUALIFIERS,
    TERM_MODES,
    spec_of,
)
from apps.search.query.values import ValueProblem

_ENDS = (")", "or", "and")


def _span(first: Node | Token, last: Node | Token) -> tuple[int, int]:
    return first.pos, last.pos + last.length - first.pos


class _Parser:
    """One parse: a token cursor plus the guard-rail counters."""

    def __init__(self, q: str) -> None:
        self.q = q
        self.tokens = tokenize(q)
        self.i = 0
        self.depth = 0
        self.terms = 0
        self.tag_terms = 0

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def error(
        self, code: str, message: str, token: Token, hint: str, length: int | None = None
    ) -> QueryError:
        text = self.q[token.pos : token.pos + (token.length if length is None else length)]
        return QueryError(code, message, token=text, position=token.pos, length=length, hint=hint)

    def dangling(self, op: Token) -> QueryError:
        word = self.q[op.pos : op.pos + op.length]
        return self.error(
            "dangling_operator",
            f"{word!r} at position {op.pos} has nothing to apply to.",
            op,
            f"Put a tag or a group on both sides of {word!r}, or remove it."
            if op.kind in ("or", "and")
            else f"Write {word!r} directly before a tag or '(' or remove it.",
        )

    def or_expr(self) -> Node:
        first = self.peek()
        if first is not None and first.kind in ("or", "and"):
            raise self.dangling(first)
        items = [self.and_expr()]
        while (token := self.peek()) is not None and token.kind == "or":
            op = self.take()
            after = self.peek()
            if after is None or after.kind in _ENDS:
                raise self.dangling(op)
            items.append(self.and_expr())
        if len(items) == 1:
            return items[0]
        pos, length = _span(items[0], items[-1])
        return Or(pos, length, tuple(items))

    def and_expr(self) -> Node:
        factors: list[Node] = []
        tilde: list[Node] = []
        tilde_at = -1
        while (token := self.peek()) is not None and token.kind not in (")", "or"):
            if token.kind == "and":
                op = self.take()
                after = self.peek()
                if (not factors and not tilde) or after is None or after.kind in _ENDS:
                    raise self.dangling(op)
                continue
            node, is_tilde = self.factor()
            if is_tilde:
                tilde_at = len(factors) if tilde_at < 0 else tilde_at
                tilde.append(node)
            else:
                factors.append(node)
        if tilde:
            group: Node = tilde[0]
            if len(tilde) > 1:
                pos, length = _span(tilde[0], tilde[-1])
                group = Or(pos, length, tuple(tilde))
            factors.insert(tilde_at, group)
        if not factors:
            token = self.peek()
            assert token is not None  # callers only enter at a factor
            raise self.error("unexpected_token", f"Unexpected {token.kind!r}.", token, "Remove it.")
        if len(factors) == 1:
            return factors[0]
        pos, length = _span(min(factors, key=lambda n: n.pos), max(factors, key=lambda n: n.pos + n.length))
        return And(pos, length, tuple(factors))

    def factor(self) -> tuple[Node, bool]:
        token = self.peek()
        assert token is not None
        if token.kind in ("-", "~"):
            op = self.take()
            after = self.peek()
            if after is None or after.kind in _ENDS:
                raise self.dangling(op)
            if after.kind in ("-", "~"):
                raise self.error(
                    "unexpected_token",
                    f"{after.kind!r} cannot follow {op.kind!r}.",
                    after,
                    "Use one '-' or '~' per term; group with parentheses.",
                )
            child = self.primary()
            if op.kind == "~":
                return child, True
            pos, length = _span(op, child)
            return Not(pos, length, child), False
        return self.primary(), False

    def primary(self) -> Node:
        token = self.take()
        if token.kind == "(":
            self.depth += 1
            if self.depth > int_knob("SEARCH_MAX_DEPTH"):
                raise self.error(
                    "nesting_too_deep",
                    f"Groups nest deeper than {int_knob('SEARCH_MAX_DEPTH')} levels.",
                    token,
                    "Flatten the parentheses.",
                )
            after = self.peek()
            if after is None:
                raise self.unclosed(token)
            if after.kind == ")":
                raise self.error(
                    "empty_group",
                    f"Empty group at position {token.pos}.",
                    token,
                    "Put a tag between the parentheses or remove them.",
                    length=after.pos + 1 - token.pos,
                )
            inner = self.or_expr()
            close = self.peek()
            if close is None or close.kind != ")":
                raise self.unclosed(token)
            self.take()
            self.depth -= 1
            return inner
        if token.kind == ")":
            raise self.error(
                "unbalanced_parenthesis",
                f"Unmatched ')' at position {token.pos}.",
                token,
                "Remove ')' or add '(' before it.",
            )
        if token.kind == "term":
            return self.term(token)
        raise self.error("unexpected_token", f"Unexpected {token.kind!r}.", token, "Remove it.")

    def unclosed(self, token: Token) -> QueryError:
        return self.error(
            "unbalanced_parenthesis",
            f"Unclosed '(' opened at position {token.pos}.",
            token,
            "Add ')' or remove '('.",
        )

    def count(self, token: Token, *, tag: bool) -> None:
        self.terms += 1
        self.tag_terms += tag
        limit = int_knob("SEARCH_MAX_TERMS")
        if self.terms > limit:
            raise self.error("too_many_terms", f"More than {limit} terms.", token, "Shorten the query.")
        limit = int_knob("SEARCH_MAX_TAG_TERMS")
        if tag and self.tag_terms > limit:
            raise self.error(
                "too_many_terms",
                f"More than {limit} tag terms (tags, wildcards, ai:, direct:, unaliased:).",
                token,
                "Remove tag terms; qualifiers such as width: do not count.",
            )

    def term(self, token: Token) -> Node:
        chars = token.chars
        colon = next((k for k, c in enumerate(chars) if c.ch == ":" and not c.literal), -1)
        prefix = "".join(c.ch for c in chars[:colon]).lower() if colon > 0 else ""
        if prefix in SPECS or prefix in NOT_AVAILABLE or (prefix and spec_of(prefix) is not None):
            self.count(token, tag=prefix in TAG_QUALIFIERS)
            return self.qualifier(token, prefix, colon)
        mode = "plain"
        if prefix in TERM_MODES:
            mode, chars = prefix, chars[colon + 1 :]
        self.count(token, tag=True)
        text = "".join(c.ch for c in chars)
        stars = tuple(k for k, c in enumerate(chars) if c.ch == "*" and not c.literal)
        inner = next((k for k, c in enumerate(chars) if c.ch == ":" and not c.literal), -1)
        if not text:
            raise self.error(
                "invalid_value", f"{prefix}: needs a tag name.", token, f"Write a tag after '{prefix}:'."
            )
        return TagTerm(token.pos, token.length, mode, text, inner, stars, token.raw)

    def qualifier(self, token: Token, name: str, colon: int) -> Qualifier:
        rest = token.chars[colon + 1 :]
        value = "".join(c.ch for c in rest)
        value_pos = rest[0].pos if rest else token.pos + token.length
        if name in NOT_AVAILABLE:
            raise self.error(
                "invalid_value",
                f"{name}: is not available in this version.",
                token,
                "Remove it; see the query help for the qualifiers that work.",
            )
        try:
            spec = spec_of(name)
            assert spec is not None  # term() sends only known qualifiers here
            parsed = spec.read(value)
        except ValueProblem as exc:
            at = rest[exc.offset].pos if exc.offset < len(rest) else value_pos
            raise QueryError(
                "invalid_value",
                f"{name}: {exc.message}",
                token=exc.token,
                position=at,
                length=max(len(exc.token), 0),
                hint=exc.hint,
            ) from None
        return Qualifier(token.pos, token.length, name, value, parsed, value_pos, token.raw)


def _check_singletons(q: str, root: Node | None) -> None:
    """order/limit/in/vocab: once, not negated, not in OR (AND groups are fine)."""
    seen: set[str] = set()

    def visit(node: Node, negated: Not | None, in_or: bool) -> None:
        if isinstance(node, Not):
            assert node.child is not None
            visit(node.child, negated or node, in_or)
        elif isinstance(node, And | Or):
            for child in node.children:
                visit(child, negated, in_or or isinstance(node, Or))
        elif isinstance(node, Qualifier) and node.name in SINGLETONS:
            if negated is not None:
                at: Node = negated if negated.child is node else node
                raise QueryError(
                    "singleton_negated",
                    f"{node.name}: cannot be negated.",
                    token=q[at.pos : at.pos + at.length],
                    position=at.pos,
                    hint=f"Remove '-' before {node.name}:.",
                )
            if in_or:
                raise QueryError(
                    "singleton_in_or",
                    f"{node.name}: applies to the whole query and cannot be part of an OR.",
                    token=node.raw,
                    position=node.pos,
                    hint=f"Move {node.name}: out of the OR group.",
                )
            if node.name in seen:
                raise QueryError(
                    "singleton_repeated",
                    f"{node.name}: may appear only once.",
                    token=node.raw,
                    position=node.pos,
                    hint=f"Keep one {node.name}:.",
                )
            seen.add(node.name)

    if root is not None:
        visit(root, None, False)


def _check_order(root: Node | None) -> None:
    """order:timestamp needs a positive top-level video:, order:similarity a similar:."""
    top = list(root.children) if isinstance(root, And) else [root] if root is not None else []
    present = {n.name for n in top if isinstance(n, Qualifier)}
    if present & extensions.ranked_qualifiers():
        present.add("similar")  # ranked terms (clip:, …) order by similarity too
    for node in top:
        if not isinstance(node, Qualifier) or node.name != "order":
            continue
        needed = ORDER_NEEDS.get(node.parsed[0])
        if needed is not None and needed[0] not in present:
            qualifier, example, purpose = needed
            raise QueryError(
                "order_requires",
                f"order:{node.parsed[0]} needs {qualifier}:<id>.",
                token=node.raw,
                position=node.pos,
                hint=f"Add {example} to list {purpose}.",
            )


# order → (the qualifier it needs at the top level, an example, what the pair lists)
ORDER_NEEDS = {
    "timestamp": ("video", "video:<id>", "one video's frames in time order"),
    "similarity": ("similar", "similar:<id>,<distance>", "an item's near-duplicates closest first"),
}


def parse(q: str) -> Node | None:
    """Parse a query into an AST (None for the empty query) or raise QueryError."""
    limit = int_knob("SEARCH_MAX_LENGTH")
    if len(q) > limit:
        raise QueryError(
            "query_too_long",
            f"The query has {len(q)} characters; at most {limit} are allowed.",
            token=q[limit : limit + 20],
            position=limit,
            length=len(q) - limit,
            hint="Shorten the query.",
        )
    parser = _Parser(q)
    if not parser.tokens:
        return None
    root = parser.or_expr()
    if (extra := parser.peek()) is not None:
        raise parser.error(
            "unbalanced_parenthesis",
            f"Unmatched ')' at position {extra.pos}.",
            extra,
            "Remove ')' or add '(' before it.",
        )
    _check_singletons(q, root)
    _check_order(root)
    return root
