from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "apps.datasets"
    label = "datasets"
    verbose_name = "Datasets"

    def ready(self) -> None:
        # `dataset:` and `subset:` in the query language (docs/query-language.md#datasets-and-subsets);
        # the selection action and item panel on library pages (docs/datasets.md#pages).
        from apps.datasets.selectors import search
        from apps.datasets.views import library
        from apps.media import extensions as media_extensions
        from apps.search import extensions

        extensions.qualifier_register(search.DATASET)
        extensions.qualifier_register(search.SUBSET)
        media_extensions.item_panel_register(key="datasets", panel=library.item_panel)
        media_extensions.selection_action_register(
            media_extensions.SelectionAction(
                key="add-to-dataset",
                label="Add to dataset…",
                url_name="datasets:selection-add",
                perm="datasets.change_dataset",
            )
        )
