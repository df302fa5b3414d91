"""Perceptual-hash arithmetic shared by ingest and near-duplicate search (no Pillow, no Django).

The hash itself is computed from pixels in `apps.media.services.probe.phash64`.
"""


def phash_bands(value: int) -> list[int]:
    """Split a 64-bit hash into 13/13/13/13/12-bit bands (pigeonhole index for distance ≤ 4)."""
    return [
        (value >> 51) & 0x1FFF,
        (value >> 38) & 0x1FFF,
        (value >> 25) & 0x1FFF,
        (value >> 12) & 0x1FFF,
        value & 0xFFF,
    ]


def phash_to_signed(value: int) -> int:
    """The hash as the signed 64-bit integer the database column stores."""
    return value - (1 << 64) if value >= 1 << 63 else value
