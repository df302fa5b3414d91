"""Admin for the tag models. Writes go through the services (validation, rules, counters);
rule rows and logs are read-only here and change through their actions.

Models with a composite primary key (TagAssignment, TagWord, TagStat, TagClosure, EffectiveTag,
ItemTagType, OperationChange, OperationSet, OperationTarget) cannot be registered with the Django
admin; their rows are shown on the Tag and Operation pages instead.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseBase
from django.utils.html import format_html, format_html_join

from apps.core.exceptions import DomainError
from apps.tags.api.views_vocab import csv_response
from apps.tags.models import (
    AliasResolution,
    Description,
    Operation,
    OperationChange,
    OperationSet,
    RuleStatus,
    Tag,
    TagAlias,
    TagImplication,
    TagSet,
    TagStat,
    TagType,
    Vocabulary,
)
from apps.tags.services import names, rules, vocabularies

APPROVE = "tags.approve_rules"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Browse only: these rows change through services (rules, logs, descriptions)."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _form_check(form: forms.ModelForm, check: Any) -> None:
    """Run a service's validation on the would-be object and show its errors on the form."""
    try:
        check()
    except ValidationError as err:
        form.add_error(None, err.messages)
    except DomainError as err:
        fields = err.details.get("fields") if isinstance(err.details, dict) else None
        if isinstance(fields, dict) and all(name in form.fields for name in fields):
            for name, errors in fields.items():
                for message in errors:
                    form.add_error(name, message)
        else:
            form.add_error(None, err.message)


# --- tag types -----------------------------------------------------------------------------------


class TagTypeAdminForm(forms.ModelForm):
    class Meta:
        model = TagType
        fields = [*vocabularies.TYPE_FIELDS]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            probe = TagType(pk=self.instance.pk, **{f: data.get(f) for f in vocabularies.TYPE_FIELDS})
            _form_check(self, lambda: vocabularies.tag_type_validate(probe))
        return data


@admin.register(TagType)
class TagTypeAdmin(admin.ModelAdmin):
    form = TagTypeAdminForm
    list_display = [
        "key",
        "name",
        "color",
        "display_order",
        "caption_order",
        "caption_zone",
        "pinned",
        "droppable",
        "shuffleable",
        "exported",
        "is_default_key",
    ]
    list_editable = ["display_order", "caption_order", "caption_zone", "pinned", "droppable", "exported"]
    actions = ["make_default"]

    def save_model(self, request: HttpRequest, obj: TagType, form: forms.ModelForm, change: bool) -> None:
        values = {f: getattr(obj, f) for f in vocabularies.TYPE_FIELDS}
        if change:
            changed = {f: values[f] for f in form.changed_data if f in values}
            vocabularies.tag_type_update(tag_type=obj, **changed)
        else:
            created = vocabularies.tag_type_create(**values)
            obj.pk = created.pk

    def has_delete_permission(self, request: HttpRequest, obj: TagType | None = None) -> bool:
        if obj is not None and obj.is_default_key:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: TagType) -> None:
        vocabularies.tag_type_delete(tag_type=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[TagType]) -> None:
        for tag_type in queryset:
            try:
                vocabularies.tag_type_delete(tag_type=tag_type)
            except DomainError as err:
                self.message_user(request, err.message, messages.ERROR)

    @admin.action(description="Make the default type (new tags get it)", permissions=["change"])
    def make_default(self, request: HttpRequest, queryset: QuerySet[TagType]) -> None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(request, "Choose exactly one type.", messages.WARNING)
            return
        vocabularies.tag_type_update(tag_type=chosen[0], is_default=True)
        self.message_user(request, f"{chosen[0].name} is now the default type.")


# --- vocabularies (tag templates) ----------------------------------------------------------------


class VocabularyAdminForm(forms.ModelForm):
    word_separator = forms.ChoiceField(choices=list(vocabularies.WORD_SEPARATORS.items()), required=False)

    class Meta:
        model = Vocabulary
        fields = [*vocabularies.VOCABULARY_FIELDS]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            probe = Vocabulary(
                pk=self.instance.pk, **{f: data.get(f) for f in vocabularies.VOCABULARY_FIELDS}
            )
            _form_check(self, lambda: vocabularies.vocabulary_validate(probe))
        return data


@admin.register(Vocabulary)
class VocabularyAdmin(admin.ModelAdmin):
    form = VocabularyAdminForm
    list_display = ["slug", "name", "kind", "policy", "case", "default_type", "is_default_key"]
    list_select_related = ["default_type"]
    actions = ["make_default", "export_csv", "rebuild_words"]

    def save_model(self, request: HttpRequest, obj: Vocabulary, form: forms.ModelForm, change: bool) -> None:
        values = {f: getattr(obj, f) for f in vocabularies.VOCABULARY_FIELDS}
        if change:
            changed = {f: values[f] for f in form.changed_data if f in values}
            vocabularies.vocabulary_update(vocabulary=obj, **changed)
        else:
            obj.pk = vocabularies.vocabulary_create(**values).pk

    def has_delete_permission(self, request: HttpRequest, obj: Vocabulary | None = None) -> bool:
        if obj is not None and obj.is_default_key:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj: Vocabulary) -> None:
        vocabularies.vocabulary_delete(vocabulary=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Vocabulary]) -> None:
        for vocabulary in queryset:
            try:
                vocabularies.vocabulary_delete(vocabulary=vocabulary)
            except DomainError as err:
                self.message_user(request, err.message, messages.ERROR)

    @admin.action(description="Make the default template", permissions=["change"])
    def make_default(self, request: HttpRequest, queryset: QuerySet[Vocabulary]) -> None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(request, "Choose exactly one template.", messages.WARNING)
            return
        vocabularies.vocabulary_update(vocabulary=chosen[0], is_default=True)
        self.message_user(request, f"{chosen[0].name} is now the default template.")

    @admin.action(description="Export as CSV (one template)")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Vocabulary]) -> HttpResponseBase | None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(request, "Choose exactly one template to export.", messages.WARNING)
            return None
        return csv_response(chosen[0])

    @admin.action(description="Rebuild autocomplete words", permissions=["change"])
    def rebuild_words(self, request: HttpRequest, queryset: QuerySet[Vocabulary]) -> None:
        total = sum(names.tag_words_rebuild(vocabulary=v) for v in queryset)
        self.message_user(request, f"{total} words written.")


# --- tags ----------------------------------------------------------------------------------------------


class TagAdminForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ["vocabulary", "name", "display_name", "type", "is_deprecated", "keep_underscore"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.instance.pk and data.get("vocabulary") and data.get("name"):
            vocabulary = data["vocabulary"]
            try:
                data["name"] = names.tag_name_normalise(raw=data["name"], vocabulary=vocabulary)
            except DomainError as err:
                self.add_error("name", err.message)
        return data


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    form = TagAdminForm
    list_display = ["name", "vocabulary", "type", "media_count", "is_deprecated"]
    list_filter = ["vocabulary", "type", "is_deprecated"]
    search_fields = ["^name"]
    show_full_result_count = False
    list_select_related = ["vocabulary", "type"]
    actions = ["deprecate", "restore", "recount"]

    def get_readonly_fields(self, request: HttpRequest, obj: Tag | None = None) -> list[str]:
        fixed = ["media_count", "stats", "aliases"]
        return ["vocabulary", "name", *fixed] if obj is not None else fixed

    def save_model(self, request: HttpRequest, obj: Tag, form: forms.ModelForm, change: bool) -> None:
        if change:
            editable = ("type", "display_name", "is_deprecated", "keep_underscore")
            names.tag_update(tag=obj, **{f: getattr(obj, f) for f in form.changed_data if f in editable})
        else:
            created = names.tag_create(
                vocabulary=obj.vocabulary,
                name=obj.name,
                tag_type=obj.type,
                display_name=obj.display_name,
                keep_underscore=obj.keep_underscore,
            )
            if obj.is_deprecated:
                names.tags_set_deprecated(tag_ids=[created.pk])
            obj.pk = created.pk

    def has_delete_permission(self, request: HttpRequest, obj: Tag | None = None) -> bool:
        return False  # tags are deprecated, not deleted: assignments and rules point at them

    @admin.display(description="Count per set kind")
    def stats(self, obj: Tag) -> str:
        rows = TagStat.objects.filter(tag=obj).order_by("set_kind")
        labels = dict(TagSet.Kind.choices)
        return format_html_join(
            ", ", "{}: {}", ((labels.get(r.set_kind, r.set_kind), r.current_count) for r in rows)
        )

    @admin.display(description="Aliases")
    def aliases(self, obj: Tag) -> str:
        resolution = AliasResolution.objects.filter(tag=obj).select_related("ideal_tag").first()
        if resolution is not None:
            return format_html("reads as <strong>{}</strong>", resolution.ideal_tag.name)
        rows = (
            TagAlias.objects.filter(consequent=obj).select_related("antecedent").order_by("antecedent__name")
        )
        return format_html_join(", ", "{} ({})", ((a.antecedent.name, a.status) for a in rows[:50]))

    @admin.action(description="Deprecate (refused on human input)", permissions=["change"])
    def deprecate(self, request: HttpRequest, queryset: QuerySet[Tag]) -> None:
        n = names.tags_set_deprecated(tag_ids=queryset.values_list("pk", flat=True), deprecated=True)
        self.message_user(request, f"{n} tag{'s' if n != 1 else ''} deprecated.")

    @admin.action(description="Restore (no longer deprecated)", permissions=["change"])
    def restore(self, request: HttpRequest, queryset: QuerySet[Tag]) -> None:
        n = names.tags_set_deprecated(tag_ids=queryset.values_list("pk", flat=True), deprecated=False)
        self.message_user(request, f"{n} tag{'s' if n != 1 else ''} restored.")

    @admin.action(description="Recount items (repair drift)", permissions=["change"])
    def recount(self, request: HttpRequest, queryset: QuerySet[Tag]) -> None:
        n = names.tags_recount(tag_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, f"{n} count{'s' if n != 1 else ''} corrected.")


@admin.register(TagSet)
class TagSetAdmin(admin.ModelAdmin):
    list_display = ["id", "media_item", "kind", "slot", "origin_label", "assignment_count", "created_at"]
    list_filter = ["kind", "vocabulary"]
    search_fields = ["=media_item__id", "origin_label"]
    show_full_result_count = False
    list_select_related = ["media_item"]
    raw_id_fields = ["media_item", "origin"]
    readonly_fields = [
        "media_item",
        "kind",
        "vocabulary",
        "slot",
        "origin",
        "origin_label",
        "tagger_model",
        "tagger_version",
        "assignment_count",
        "row_version",
        "created_by",
        "tag_list",
    ]
    fields = tuple(readonly_fields)

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.display(description="Tags")
    def tag_list(self, obj: TagSet) -> str:
        rows = obj.assignments.filter(state=1).select_related("tag").order_by("position")
        return format_html_join(", ", "{} <small>({})</small>", ((a.tag.name, a.added_via) for a in rows))


# --- rules, resolutions, descriptions, operations (read-only) ---------------------------------------


def _rules() -> Any:
    return rules


class _RuleAdmin(ReadOnlyAdmin):
    list_filter = ["status", "vocabulary"]
    list_select_related = True
    actions = ["activate", "retire"]

    def has_approve_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(APPROVE)

    def _apply(self, request: HttpRequest, queryset: QuerySet[Any], verb: str) -> None:
        done = 0
        for rule in queryset:
            try:
                self._call(rule, verb, request.user)
            except DomainError as err:
                self.message_user(request, f"{rule}: {err.message}", messages.ERROR)
            else:
                done += 1
        self.message_user(request, f"{done} rule{'s' if done != 1 else ''} {verb}d.")

    def _call(self, rule: Any, verb: str, actor: Any) -> None:
        raise NotImplementedError

    @admin.action(description="Activate", permissions=["approve"])
    def activate(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._apply(request, queryset.exclude(status=RuleStatus.ACTIVE), "activate")

    @admin.action(description="Retire (active) or reject (pending)", permissions=["approve"])
    def retire(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        self._apply(request, queryset.filter(status__in=[RuleStatus.ACTIVE, RuleStatus.PENDING]), "retire")


@admin.register(TagAlias)
class TagAliasAdmin(_RuleAdmin):
    list_display = [
        "antecedent",
        "consequent",
        "status",
        "vocabulary",
        "created_by",
        "approved_by",
        "created_at",
    ]
    search_fields = ["^antecedent__name", "^consequent__name"]

    def _call(self, rule: Any, verb: str, actor: Any) -> None:
        rules = _rules()
        if verb == "activate":
            rules.alias_activate(alias=rule, actor=actor)
        else:
            rules.alias_retire(alias=rule, actor=actor, reject=rule.status == RuleStatus.PENDING)


@admin.register(TagImplication)
class TagImplicationAdmin(_RuleAdmin):
    list_display = ["child", "parent", "status", "vocabulary", "allow_cross_type", "created_by", "created_at"]
    search_fields = ["^child__name", "^parent__name"]

    def _call(self, rule: Any, verb: str, actor: Any) -> None:
        rules = _rules()
        if verb == "activate":
            rules.implication_activate(rule=rule, actor=actor)
        else:
            rules.implication_retire(rule=rule, actor=actor, reject=rule.status == RuleStatus.PENDING)


@admin.register(AliasResolution)
class AliasResolutionAdmin(ReadOnlyAdmin):
    list_display = ["tag", "ideal_tag"]
    list_select_related = ["tag", "ideal_tag"]
    search_fields = ["^tag__name", "^ideal_tag__name"]


@admin.register(Description)
class DescriptionAdmin(ReadOnlyAdmin):
    list_display = ["id", "media_item", "kind", "label", "excerpt", "set_kind", "added_via", "created_at"]
    list_filter = ["kind", "set_kind", "added_via"]
    list_select_related = ["media_item"]
    search_fields = ["=media_item__id"]

    @admin.display(description="Text")
    def excerpt(self, obj: Description) -> str:
        return obj.text[:80]


@admin.register(Operation)
class OperationAdmin(ReadOnlyAdmin):
    list_display = ["id", "kind", "status", "summary", "set_kind", "created_by", "created_at"]
    list_filter = ["kind", "status"]
    list_select_related = ["created_by"]
    search_fields = ["=id", "summary"]
    readonly_fields = ["change_list", "created_set_list"]

    @admin.display(description="Sets created whole (first 100)")
    def created_set_list(self, obj: Operation) -> str:
        rows = OperationSet.objects.filter(operation=obj).order_by("media_item_id")[:100]
        return format_html_join(
            "",
            "<div>item {}: set {} with {} rows</div>",
            ((r.media_item_id, r.tagset_id, r.rows) for r in rows),
        )

    @admin.display(description="Changes (first 100)")
    def change_list(self, obj: Operation) -> str:
        rows = (
            OperationChange.objects.filter(operation=obj)
            .select_related("tag")
            .order_by("media_item_id")[:100]
        )
        states = dict(OperationChange.State.choices)
        return format_html_join(
            "",
            "<div>item {}: {} {} → {}</div>",
            (
                (r.media_item_id, r.tag.name, states.get(r.before_state), states.get(r.after_state))
                for r in rows
            ),
        )
