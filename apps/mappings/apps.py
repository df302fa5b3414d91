from django.apps import AppConfig


class MappingsConfig(AppConfig):
    name = "apps.mappings"
    label = "mappings"
    verbose_name = "Tag mappings"

    def ready(self) -> None:
        # The built-in suggestion sources fill the suggester extension point
        # (docs/mappings.md#suggestions); the search app's `has:stale_mapping` comes from here.
        from apps.mappings import selectors
        from apps.mappings.services import apply, suggestions
        from apps.search import extensions
        from apps.tags import extensions as tag_extensions
        from apps.tags.models import Operation

        suggestions.builtin_register()
        extensions.has_value_register(value="stale_mapping", condition=selectors.stale_condition)
        # Undoing the undo of an apply that created sets applies the profile there again.
        tag_extensions.redo_handler_register(kind=Operation.Kind.MAP, handler=apply.mapping_redo)
