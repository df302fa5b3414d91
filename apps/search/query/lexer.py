"""Tokenizer for the query language (docs/query-language.md#syntax).

Words are separated by whitespace. At a word's start, `(` opens a group and `-`/`~` negate or
mark a legacy OR operand (tag names never start with these). Trailing `)` close groups only
while the word itself has more `)` than `(` and a group is open, so `saber_(fate)` and `:-)`
stay names. `"…"` quotes (spaces included) and `\\` escapes one character; quoted or escaped
characters are never operators, wildcards or separators.
"""

from __future__ import annotations

from dataclasses import dataclass

from apps.search.query.errors import QueryError

KEYWORDS = {"or": "or", "|": "or", "and": "and"}


@dataclass(frozen=True)
class Char:
    """One unescaped character: its value, whether it was quoted/escaped, and its offset."""

    ch: str
    literal: bool
    pos: int


@dataclass(frozen=True)
class Token:
    """`kind` is one of ( ) - ~ or and term; terms carry their characters."""

    kind: str
    pos: int
    length: int
    chars: tuple[Char, ...] = ()
    raw: str = ""

    @property
    def text(self) -> str:
        """The term's unescaped text."""
        return "".join(c.ch for c in self.chars)


def _word(q: str, i: int) -> tuple[list[Char], int]:
    """Read one whitespace-delimited word from offset i; returns its characters and end."""
    n = len(q)
    chars: list[Char] = []
    while i < n and not q[i].isspace():
        c = q[i]
        if c == "\\":
            if i + 1 >= n:
                raise QueryError(
                    "unexpected_token",
                    "A backslash at the end of the query escapes nothing.",
                    token="\\",  # noqa: S106
                    position=i,
                    hint="Remove the trailing '\\' or put a character after it.",
                )
            chars.append(Char(q[i + 1], True, i + 1))
            i += 2
        elif c == '"':
            j = i + 1
            while True:
                if j >= n:
                    raise QueryError(
                        "unexpected_token",
                        f"Unclosed quote opened at position {i}.",
                        token='"',  # noqa: S106
                        position=i,
                        hint="Add a closing '\"' or escape the quote as \\\".",
                    )
                if q[j] == "\\" and j + 1 < n:
                    chars.append(Char(q[j + 1], True, j + 1))
                    j += 2
                elif q[j] == '"':
                    break
                else:
                    chars.append(Char(q[j], True, j))
                    j += 1
            i = j + 1
        else:
            chars.append(Char(c, False, i))
            i += 1
    return chars, i


def tokenize(q: str) -> list[Token]:
    """Split a query into tokens, applying the group and keyword rules."""
    tokens: list[Token] = []
    depth = 0
    i, n = 0, len(q)
    while i < n:
        if q[i].isspace():
            i += 1
            continue
        start = i
        chars, i = _word(q, i)
        k = 0
        while k < len(chars) and not chars[k].literal and chars[k].ch in "(-~":
            tokens.append(Token(chars[k].ch, chars[k].pos, 1))
            depth += chars[k].ch == "("
            k += 1
        body = chars[k:]
        body_start = chars[k - 1].pos + 1 if k else start
        closes: list[Token] = []
        if body and all(not c.literal and c.ch == ")" for c in body):
            closes = [Token(")", c.pos, 1) for c in body]
            depth = max(0, depth - len(body))
            body = []
        else:
            balance = sum((c.ch == "(") - (c.ch == ")") for c in body if not c.literal)
            while body and depth > 0 and balance < 0 and not body[-1].literal and body[-1].ch == ")":
                closes.insert(0, Token(")", body[-1].pos, 1))
                body = body[:-1]
                balance += 1
                depth -= 1
        if body:
            body_end = closes[0].pos if closes else i
            raw = q[body_start:body_end]
            text = "".join(c.ch for c in body)
            keyword = KEYWORDS.get(text.lower()) if all(not c.literal for c in body) else None
            if keyword:
                tokens.append(Token(keyword, body_start, body_end - body_start, raw=raw))
            else:
                tokens.append(Token("term", body_start, body_end - body_start, tuple(body), raw))
        tokens.extend(closes)
    return tokens
