"""Tag-set slots: the key that tells apart an item's sets of one kind and vocabulary.

One module builds and parses them (docs/tags.md#tag-sets):

* curated: `""` (one curated set per item and vocabulary);
* source: `src:<MediaSource id>` (tags that arrived with the file), or `src:label:<hash>` (added
  later, keyed by where they came from: the first 32 hex digits of the label's sha256);
* tagger: `<model>@<version>`, or `<model>@<version>:<variant>` for another input of the same
  version (a scheme's `image_masked:` step writes `…:masked`, docs/taggers.md#outputs);
* derived: `parent:<item id>` (a transform's parent), `video:<item id>` (a frame's video),
  `profile:<profile id>` (a mapping profile's output, docs/mappings.md#preview-and-apply).
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

CURATED = ""
DERIVED_RELATIONS = ("parent", "video")
MAPPING = "profile"


class DerivedFrom(NamedTuple):
    """What a derived set's slot says: the relation and the item it came from."""

    relation: str
    item_id: int


def source(*, origin_id: int | None, label: str = "") -> str:
    """The slot of a source set: tied to an arrival, or keyed by its label when there is none."""
    if origin_id is not None:
        return f"src:{origin_id}"
    return "src:label:" + hashlib.sha256(label.encode()).hexdigest()[:32]


def derived(*, relation: str, item_id: int) -> str:
    """The slot of a set inherited from another item (`relation`: parent or video)."""
    if relation not in DERIVED_RELATIONS:
        raise ValueError(f"unknown derived relation {relation!r}")
    return f"{relation}:{item_id}"


def tagger(*, model: str, version: str, variant: str = "") -> str:
    """The slot of a tagger's set; a `variant` keeps another input's output apart (`masked`)."""
    return f"{model}@{version}:{variant}" if variant else f"{model}@{version}"


MAPPING_PREFIX = f"{MAPPING}:"  # every mapping slot starts so (a query can exclude them)


def mapping(profile_id: int) -> str:
    """The slot of the derived set a mapping profile writes (one per item and profile)."""
    return f"{MAPPING}:{profile_id}"


def mapping_parse(slot: str) -> int | None:
    """The profile id of a mapping slot, or None for any other slot."""
    prefix, _, ref = slot.partition(":")
    return int(ref) if prefix == MAPPING and ref.isdigit() else None


def derived_parse(slot: str) -> DerivedFrom | None:
    """The relation and item of a derived slot, or None for any other slot."""
    relation, _, ref = slot.partition(":")
    if relation in DERIVED_RELATIONS and ref.isdigit():
        return DerivedFrom(relation, int(ref))
    return None
