"""Query strings shared by the search tests: random hostile input for the parser and the API."""

from __future__ import annotations

import random

HOSTILE = [*'abcxyz ()"\\-~:*,|<>=.', "é", "ß", "ミ", "\u200b", "\t", "\n", "or", "and", "😀", "\x00"]


def hostile_queries(n: int, seed: int) -> list[str]:
    """Random strings of up to 200 characters from an alphabet of syntax and unicode."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        text = "".join(rng.choice(HOSTILE) for _ in range(rng.randint(0, 120)))
        out.append(text[:200])
    return out
