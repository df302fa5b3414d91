"""The export's one random function (docs/export-captions.md#materialisation).

Every seeded decision of an export is `u(seed, item, variant, kind, key)`: a pure function of its
key, so one changed tag moves no other decision and a re-export is byte-identical.
"""

from __future__ import annotations

import hashlib

NAMESPACE = "baggintag/1"
SEPARATOR = "\x1f"  # U+001F UNIT SEPARATOR between the parts
_SCALE = 2.0**53


def u(*parts: object) -> float:
    """A uniform float in [0, 1): the first 8 bytes of SHA-256("baggintag/1" ␟ part ␟ …) read
    big-endian, shifted right by 11 bits (53 remain), divided by 2^53. Ints are written with
    `str()`, strings as they are."""
    joined = SEPARATOR.join([NAMESPACE, *map(_part, parts)])
    digest = hashlib.sha256(joined.encode("utf-8")).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / _SCALE


def concept_seed(seed: int, partition: str) -> int:
    """OneTrainer concept seed of a partition: ⌊u(seed, "concept", partition)·2^30⌋."""
    return int(u(seed, "concept", partition) * 2**30)


def _part(part: object) -> str:
    if isinstance(part, str):
        return str(part)
    if isinstance(part, int) and not isinstance(part, bool):
        return str(int(part))
    raise TypeError(f"u() takes ints and strings, not {type(part).__name__}")
