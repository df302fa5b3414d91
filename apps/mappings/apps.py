from django.apps import AppConfig


class MappingsConfig(AppConfig):
    name = "apps.mappings"
    label = "mappings"
    verbose_name = "Tag mappings"

    def ready(self) -> None:
        # The built-in suggestion sources fill the suggester extension point
        # (docs/mappings.md#suggestions); the search app's `has:stale_mapping` comes from here.
        from apps.mappings.services import suggestions

        suggestions.builtin_register()
