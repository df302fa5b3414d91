from django.apps import AppConfig


class MappingsConfig(AppConfig):
    name = "apps.mappings"
    label = "mappings"
    verbose_name = "Tag mappings"

    def ready(self) -> None:
        # The built-in suggestion sources fill the suggester extension point
        # (docs/mappings.md#suggestions); the search app's `has:stale_mapping` comes from here.
        from apps.mappings import selectors
        from apps.mappings.services import suggestions
        from apps.search import extensions

        suggestions.builtin_register()
        extensions.has_value_register(value="stale_mapping", condition=selectors.stale_condition)
