"""Tag services, one module per concern; the public names are re-exported here."""

from apps.tags.services.curation import (
    tag_set_curated_add,
    tag_set_curated_get_or_create,
    tag_set_edit,
    tag_set_promote,
)
from apps.tags.services.effective import tag_counts_forget_items
from apps.tags.services.names import (
    MAX_TAGS_PER_SET,
    tag_name_normalise,
    tag_names_canonical,
    tag_names_normalise,
    tag_type_default,
    tags_get_or_create,
    vocabulary_default,
)
from apps.tags.services.tagsets import (
    tag_set_create_source,
    tag_set_delete,
    tag_set_inherit,
    tag_sets_inherit,
)

__all__ = [
    "MAX_TAGS_PER_SET",
    "tag_counts_forget_items",
    "tag_name_normalise",
    "tag_names_canonical",
    "tag_names_normalise",
    "tag_set_create_source",
    "tag_set_curated_add",
    "tag_set_curated_get_or_create",
    "tag_set_delete",
    "tag_set_edit",
    "tag_set_inherit",
    "tag_set_promote",
    "tag_sets_inherit",
    "tag_type_default",
    "tags_get_or_create",
    "vocabulary_default",
]
