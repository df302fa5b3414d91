"""What the taggers app plugs into lower apps' extension points at start-up
(docs/taggers.md#similarity-search). Called from TaggersConfig.ready()."""

from __future__ import annotations


def register() -> None:
    """Fill the search app's registries (query-language terms backed by embeddings)."""
