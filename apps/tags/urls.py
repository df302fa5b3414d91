"""Every tag page under /tags/ (namespace `tags`): vocabularies and types, bulk edits and history,
the item tag editor, aliases and implications."""

from django.urls import path

from apps.tags.views import bulk, editor, rules, vocabularies

app_name = "tags"

urlpatterns = [
    # tags, types and templates
    path("", vocabularies.tag_list, name="tag-list"),
    path("types/", vocabularies.type_list, name="type-list"),
    path("types/new", vocabularies.type_create, name="type-create"),
    path("types/<int:pk>/", vocabularies.type_row, name="type-row"),
    path("types/<int:pk>/edit", vocabularies.type_edit, name="type-edit"),
    path("types/<int:pk>/delete", vocabularies.type_delete, name="type-delete"),
    path("templates/", vocabularies.template_list, name="template-list"),
    path("templates/<int:pk>/", vocabularies.template_detail, name="template-detail"),
    path("templates/<int:pk>/import", vocabularies.template_import, name="template-import"),
    path("templates/<int:pk>/build", vocabularies.template_build, name="template-build"),
    path("templates/<int:pk>/export.csv", vocabularies.template_export, name="template-export"),
    path("templates/<int:pk>/delete", vocabularies.template_delete, name="template-delete"),
    # bulk edits and the operations history
    path("bulk/", bulk.bulk_editor, name="bulk"),
    path("bulk/preview", bulk.bulk_preview, name="bulk-preview"),
    path("bulk/<int:pk>/apply", bulk.bulk_apply, name="bulk-apply"),
    path("operations/", bulk.operation_list, name="operation-list"),
    path("operations/<int:pk>/", bulk.operation_detail, name="operation-detail"),
    path("operations/<int:pk>/undo", bulk.operation_undo, name="operation-undo"),
    # the tag editor of one item (also a panel of the item page)
    path("editor/items/<int:pk>/", editor.editor, name="editor"),
    path("editor/items/<int:pk>/suggest", editor.suggest, name="editor-suggest"),
    path("editor/items/<int:pk>/add", editor.tag_add, name="editor-add"),
    path("editor/items/<int:pk>/remove", editor.tag_remove, name="editor-remove"),
    path("editor/items/<int:pk>/promote", editor.tag_promote, name="editor-promote"),
    path("editor/items/<int:pk>/descriptions/add", editor.description_add, name="description-add"),
    path(
        "editor/items/<int:pk>/descriptions/<int:description_id>/",
        editor.description_show,
        name="description",
    ),
    path(
        "editor/items/<int:pk>/descriptions/<int:description_id>/edit",
        editor.description_edit,
        name="description-edit",
    ),
    path(
        "editor/items/<int:pk>/descriptions/<int:description_id>/delete",
        editor.description_delete,
        name="description-delete",
    ),
    # aliases and implications
    path("rules/", rules.rule_list, name="rule-list"),
    path("rules/aliases/add", rules.alias_add, name="alias-add"),
    path("rules/implications/add", rules.implication_add, name="implication-add"),
    path("rules/implications/import", rules.implications_import, name="implications-import"),
    path("rules/<str:kind>/<int:pk>/<str:verb>", rules.rule_action, name="rule-action"),
]
