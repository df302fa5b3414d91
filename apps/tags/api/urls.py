"""Tag API routes. Each viewset module registers here (one line each)."""

from django.urls import re_path

from apps.core.routers import OptionalSlashRouter
from apps.tags.api import views_operations, views_tagsets, views_vocab

router = OptionalSlashRouter()

router.register("tag-sets", views_tagsets.TagSetViewSet, basename="tag-set")
router.register("tag-aliases", views_tagsets.TagAliasViewSet, basename="tag-alias")
router.register("tag-implications", views_tagsets.TagImplicationViewSet, basename="tag-implication")
router.register("descriptions", views_tagsets.DescriptionViewSet, basename="description")
router.register("effective-tags/rebuild", views_tagsets.EffectiveRebuildApi, basename="effective-rebuild")
router.register("tag-types", views_vocab.TagTypeViewSet, basename="tag-type")
router.register("tag-templates", views_vocab.TagTemplateViewSet, basename="tag-template")
router.register("tags", views_vocab.TagViewSet, basename="tag")
router.register("tag-operations", views_operations.TagOperationViewSet, basename="tag-operation")
# Before the router: `tags/bulk` would otherwise read as the detail route of tag "bulk".
urlpatterns = [
    re_path(r"^tags/bulk/?$", views_operations.TagBulkApi.as_view(), name="tag-bulk"),
    re_path(
        r"^media/(?P<pk>[0-9]+)/tag-sets/?$", views_tagsets.MediaTagSetsApi.as_view(), name="media-tag-sets"
    ),
    *router.urls,
]
