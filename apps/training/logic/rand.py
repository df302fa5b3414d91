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
    return Draws()(*parts)


class Draws:
    """`u` with its first parts fixed: `Draws(seed, item, variant)("drop", key)` equals
    `u(seed, item, variant, "drop", key)`, hashing the shared head once (SHA-256 streams)."""

    def __init__(self, *head: object) -> None:
        self._base = hashlib.sha256(_joined(NAMESPACE, head))

    def __call__(self, *parts: object) -> float:
        digest = self._base.copy()
        digest.update(_joined("", parts))
        return (int.from_bytes(digest.digest()[:8], "big") >> 11) / _SCALE


def _joined(start: str, parts: tuple[object, ...]) -> bytes:
    return (start + "".join(SEPARATOR + _part(part) for part in parts)).encode("utf-8")


def concept_seed(seed: int, partition: str) -> int:
    """OneTrainer concept seed of a partition: ⌊u(seed, "concept", partition)·2^30⌋."""
    return int(u(seed, "concept", partition) * 2**30)


def _part(part: object) -> str:
    kind = type(part)
    if kind is str:
        return part  # type: ignore[return-value]
    if kind is int:
        return str(part)
    raise TypeError(f"u() takes ints and strings, not {kind.__name__}")
