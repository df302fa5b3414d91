from django.apps import AppConfig


class SearchConfig(AppConfig):
    name = "apps.search"
    label = "search"

    def ready(self) -> None:
        # The library list answers `q=` through this app (docs/architecture.md#search).
        from apps.media import extensions
        from apps.search import views
        from apps.search.api import views as api_views
        from apps.search.query import executor

        extensions.query_provider_register(
            extensions.QueryProvider(
                page=views.gallery_search, api=api_views.search_response, ids=executor.search_ids
            )
        )
