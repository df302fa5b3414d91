from django.apps import AppConfig


class TaggersConfig(AppConfig):
    name = "apps.taggers"
    label = "taggers"
    verbose_name = "Taggers"

    def ready(self) -> None:
        # Nothing here may import the engine's ML packages: web processes never load torch,
        # open_clip or onnxruntime (docs/taggers.md#processes).
        from celery import signals

        from apps.taggers import receivers
        from apps.taggers.services import retrain, similarity, tag_suggestions

        # `similar:<id>,emb` and `clip:"…"` in the query language (docs/taggers.md#similarity-search).
        similarity.register()
        # Nearest target tags by their names' text vectors for mapping suggestions
        # (docs/taggers.md#mapping-suggestions).
        tag_suggestions.register()
        # Curated label changes count towards head taggers' retraining (docs/taggers.md#debounced-retraining).
        retrain.register()
        signals.worker_init.connect(receivers.worker_init, weak=False, dispatch_uid="taggers.worker_init")
