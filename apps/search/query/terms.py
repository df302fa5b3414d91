"""Tag lookups for resolution: names, alias ideals, expansions and suggestions."""

from __future__ import annotations

from typing import Any

from apps.core.exceptions import DomainError
from apps.search.query.nodes import TagTerm
from apps.search.query.qualifiers import edit_distance
from apps.tags.models import AliasResolution, Tag, TagClosure, Vocabulary
from apps.tags.services.names import tag_name_normalise


class TermResolver:
    """Per-query cache of tag rows by name and of alias ideals."""

    def __init__(self, vocabulary: Vocabulary, warnings: list[dict[str, Any]]) -> None:
        self.vocabulary = vocabulary
        self.warnings = warnings
        self.by_name: dict[str, Tag | None] = {}

    def lookup(self, raw: str) -> Tag | None:
        """The tag a user-typed name stands for in this vocabulary, or None."""
        try:
            name = tag_name_normalise(raw=raw, vocabulary=self.vocabulary)
        except DomainError:
            return None
        if name not in self.by_name:
            # With its alias resolution, if any (`ideal` then needs no query of its own).
            found = Tag.objects.filter(vocabulary=self.vocabulary, name=name).select_related(
                "resolution__ideal_tag"
            )
            self.by_name[name] = next(iter(found[:1]), None)
        return self.by_name[name]

    def ideal(self, tag: Tag, node: TagTerm) -> Tag:
        """The alias ideal of a tag (itself when not an antecedent), warning on aliases/deprecation."""
        ideal = tag
        resolution: AliasResolution | None
        if "resolution" in tag._state.fields_cache:  # read with the tag by `lookup`
            resolution = tag._state.fields_cache["resolution"]
        else:
            resolution = AliasResolution.objects.filter(tag=tag).select_related("ideal_tag").first()
        if resolution is not None:
            ideal = resolution.ideal_tag
            if node.mode != "unaliased":
                self.warnings.append(
                    {
                        "code": "aliased_term",
                        "message": f"{tag.name!r} is an alias of {ideal.name!r}.",
                        "token": node.raw,
                        "position": node.pos,
                        "tag": ideal.name,
                    }
                )
        if tag.is_deprecated or ideal.is_deprecated:
            self.warnings.append(
                {
                    "code": "deprecated_tag",
                    "message": f"{tag.name!r} is deprecated.",
                    "token": node.raw,
                    "position": node.pos,
                }
            )
        return ideal

    @staticmethod
    def expand(ideal: Tag, *, descendants: bool) -> set[int]:
        """{tag} ∪ its antecedents, plus implied-by descendants and their antecedents."""
        return TermResolver.expand_ids({ideal.pk}, descendants=descendants)

    @staticmethod
    def expand_ids(ideals: set[int], *, descendants: bool) -> set[int]:
        """`expand` for several ideal tags at once (a wildcard's matches): two set-based reads."""
        ids = set(ideals)
        if descendants and ids:
            ids |= set(
                TagClosure.objects.filter(ancestor_id__in=sorted(ids)).values_list("descendant_id", flat=True)
            )
        if ids:
            ids |= set(
                AliasResolution.objects.filter(ideal_tag_id__in=sorted(ids)).values_list("tag_id", flat=True)
            )
        return ids

    @staticmethod
    def ideal_ids(tag_ids: set[int]) -> set[int]:
        """Each tag's alias ideal (itself when it is not an alias antecedent)."""
        mapped = dict(
            AliasResolution.objects.filter(tag_id__in=sorted(tag_ids)).values_list("tag_id", "ideal_tag_id")
        )
        return {mapped.get(tag_id, tag_id) for tag_id in tag_ids}

    def suggest(self, raw: str, limit: int = 3) -> list[str]:
        """Similar names (same first character, edit distance ≤ 2), most used first."""
        try:
            name = tag_name_normalise(raw=raw, vocabulary=self.vocabulary)
        except DomainError:
            return []
        if len(name) < 2:
            return []
        candidates = Tag.objects.filter(vocabulary=self.vocabulary, name__startswith=name[:1]).order_by(
            "-media_count", "id"
        )
        names = [n for n in candidates.values_list("name", flat=True)[:500] if edit_distance(name, n) <= 2]
        return names[:limit]
