from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"
    verbose_name = "Datasets"

    def ready(self) -> None:
        # `dataset:` and `subset:` in the query language (docs/query-language.md#datasets-and-subsets);
        # the selection action and item panel on library pages (docs/datasets.md#pages).
        from apps.datasets.selectors import search
        from apps.search import extensions

        extensions.qualifier_register(search.DATASET)
        extensions.qualifier_register(search.SUBSET)
