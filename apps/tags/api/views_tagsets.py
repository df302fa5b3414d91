"""API for tag sets, alias and implication rules, and descriptions."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, status, viewsets
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.exceptions import NotFoundError
from apps.core.filters import IdFilter
from apps.core.ints import int_param
from apps.jobs.api.serializers import job_accepted_body
from apps.media import selectors as media_selectors
from apps.media.api.serializers import MediaItemOutputSerializer
from apps.tags import selectors
from apps.tags.api import serializers_tagsets as s
from apps.tags.models import Description, TagAlias, TagAssignment, TagImplication, TagSet
from apps.tags.selectors import vocabularies as vocabulary_reads
from apps.tags.services import descriptions, rules, rules_io, tag_set_delete, tag_set_edit, tag_set_promote
from apps.tags.services.names import vocabulary_default
from apps.tags.services.tagsets import tag_set_add_to_item

APPROVE = ["tags.approve_rules"]


def _current_tags() -> Prefetch:
    return Prefetch(
        "assignments",
        queryset=TagAssignment.objects.filter(state=TagAssignment.State.CURRENT)
        .select_related("tag", "tag__type")
        .order_by("position", "tag__name"),
        to_attr="current_assignments",
    )


class TagSetFilter(django_filters.FilterSet):
    media_item = IdFilter(field_name="media_item_id")
    kind = django_filters.ChoiceFilter(
        method="filter_kind", choices=[(k.label, k.label) for k in TagSet.Kind]
    )
    vocabulary = django_filters.CharFilter(field_name="vocabulary__slug")
    tag = django_filters.CharFilter(method="filter_tag", label="Has this current tag")

    class Meta:
        model = TagSet
        fields: list[str] = []

    def filter_kind(self, queryset: QuerySet[TagSet], name: str, value: str) -> QuerySet[TagSet]:
        return queryset.filter(kind={k.label: k.value for k in TagSet.Kind}[value])

    def filter_tag(self, queryset: QuerySet[TagSet], name: str, value: str) -> QuerySet[TagSet]:
        sets = TagAssignment.objects.filter(
            tag__name=value.strip().lower().replace(" ", "_"), state=TagAssignment.State.CURRENT
        ).values("tagset_id")
        return queryset.filter(pk__in=sets)


class TagSetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Tag sets: one item's tags from one origin. PUT replaces, append/remove edit; all logged."""

    serializer_class = s.TagSetOutputSerializer
    filterset_class = TagSetFilter
    queryset = TagSet.objects.none()
    required_perms: list[str] | None = None

    def get_queryset(self) -> QuerySet[TagSet]:
        return TagSet.objects.select_related("vocabulary", "origin").prefetch_related(_current_tags())

    def get_object(self) -> TagSet:
        try:
            return self.get_queryset().get(pk=int(self.kwargs["pk"]))
        except (TagSet.DoesNotExist, ValueError) as exc:
            raise NotFoundError(f"Tag set {self.kwargs['pk']} not found.", code="tags.set_not_found") from exc

    def _answer(self, tag_set: TagSet) -> Response:
        return Response(s.TagSetOutputSerializer(self.get_queryset().get(pk=tag_set.pk)).data)

    def _edit(self, request: Request, how: str) -> Response:
        """One logged edit: `how` is replace, add or remove; row_version guards against staleness."""
        data = s.TagListInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tag_set = self.get_object()
        tag_set_edit(
            tag_set=tag_set,
            actor=request.user,
            expected_version=data.validated_data.get("row_version"),
            **{how: data.validated_data["tags"]},
        )
        return self._answer(tag_set)

    @extend_schema(request=s.TagListInputSerializer, responses=s.TagSetOutputSerializer)
    def update(self, request: Request, pk: str | None = None) -> Response:
        """Replace all current tags (pass row_version to refuse a stale overwrite with 409)."""
        return self._edit(request, "replace")

    def destroy(self, request: Request, pk: str | None = None) -> Response:
        tag_set_delete(
            tag_set=self.get_object(),
            expected_version=int_param(
                request.query_params.get("row_version"), field="row_version", minimum=1
            ),
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.TagListInputSerializer, responses=s.TagSetOutputSerializer)
    @action(detail=True, methods=["post"], url_path="append-tags", required_perms=["tags.change_tagset"])
    def append_tags(self, request: Request, pk: str | None = None) -> Response:
        return self._edit(request, "add")

    @extend_schema(request=s.TagListInputSerializer, responses=s.TagSetOutputSerializer)
    @action(detail=True, methods=["post"], url_path="remove-tags", required_perms=["tags.change_tagset"])
    def remove_tags(self, request: Request, pk: str | None = None) -> Response:
        return self._edit(request, "remove")

    @extend_schema(
        request=s.PromoteInputSerializer,
        responses=inline_serializer(
            "PromoteResult",
            {
                "added": drf_serializers.ListField(child=drf_serializers.CharField()),
                "blocked_by_tombstone": drf_serializers.ListField(child=drf_serializers.CharField()),
                "operation": drf_serializers.IntegerField(allow_null=True),
            },
        ),
    )
    @action(detail=True, methods=["post"], required_perms=["tags.change_tagset"])
    def promote(self, request: Request, pk: str | None = None) -> Response:
        """Copy this set's tags (all or the listed ones) into the item's curated set."""
        data = s.PromoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        minimum = round(data.validated_data.get("min_confidence", 0) * 10000)
        return Response(
            tag_set_promote(
                source_set=self.get_object(),
                names=data.validated_data.get("tags"),
                min_confidence=minimum,
                actor=request.user,
            )
        )

    @extend_schema(responses=MediaItemOutputSerializer)
    @action(detail=True, methods=["get"])
    def media(self, request: Request, pk: str | None = None) -> Response:
        return Response(MediaItemOutputSerializer(self.get_object().media_item).data)

    @extend_schema(responses=s.TagSetOutputSerializer(many=True), filters=True)
    @action(detail=False, methods=["get"])
    def search(self, request: Request) -> Response:
        return self.list(request)


def _vocabulary(values: dict[str, Any]) -> Any:
    """The rule's tag template from its slug (404 naming it when there is none), else the default."""
    return vocabulary_reads.vocabulary_get(slug=values["vocabulary"]) if values.get("vocabulary") else None


class RuleFilter(django_filters.FilterSet):
    status = django_filters.CharFilter(field_name="status")
    vocabulary = django_filters.CharFilter(field_name="vocabulary__slug", label="Tag template (slug)")
    tag = django_filters.CharFilter(method="filter_tag")

    def filter_tag(self, queryset: QuerySet[Any], name: str, value: str) -> QuerySet[Any]:
        fields = ("antecedent", "consequent") if queryset.model is TagAlias else ("child", "parent")
        from django.db.models import Q

        clean = value.strip().lower().replace(" ", "_")
        return queryset.filter(Q(**{f"{fields[0]}__name": clean}) | Q(**{f"{fields[1]}__name": clean}))


class AliasFilter(RuleFilter):
    class Meta:
        model = TagAlias
        fields: list[str] = []


class ImplicationFilter(RuleFilter):
    class Meta:
        model = TagImplication
        fields: list[str] = []


class TagAliasViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Aliases: antecedent is read as consequent. Activating needs tags.approve_rules."""

    serializer_class = s.AliasOutputSerializer
    filterset_class = AliasFilter
    queryset = TagAlias.objects.select_related("antecedent", "consequent", "vocabulary")
    required_perms: list[str] | None = None

    @extend_schema(request=s.AliasInputSerializer, responses={201: s.AliasOutputSerializer})
    def create(self, request: Request) -> Response:
        data = s.AliasInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        alias = rules.alias_create(
            antecedent=values["antecedent"],
            consequent=values["consequent"],
            reason=values.get("reason", ""),
            activate=values["activate"],
            actor=request.user,
            vocabulary=_vocabulary(values),
        )
        return Response(s.AliasOutputSerializer(alias).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=s.AliasOutputSerializer)
    @action(detail=True, methods=["post"], required_perms=APPROVE)
    def activate(self, request: Request, pk: str | None = None) -> Response:
        return Response(
            s.AliasOutputSerializer(rules.alias_activate(alias=self.get_object(), actor=request.user)).data
        )

    @extend_schema(request=None, responses=s.AliasOutputSerializer)
    @action(detail=True, methods=["post"], required_perms=APPROVE)
    def retire(self, request: Request, pk: str | None = None) -> Response:
        alias = rules.alias_retire(
            alias=self.get_object(), actor=request.user, reject=request.query_params.get("reject") == "1"
        )
        return Response(s.AliasOutputSerializer(alias).data)


class TagImplicationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Implications: child implies parent. Activating needs tags.approve_rules."""

    serializer_class = s.ImplicationOutputSerializer
    filterset_class = ImplicationFilter
    queryset = TagImplication.objects.select_related("child", "parent", "vocabulary")
    required_perms: list[str] | None = None

    @extend_schema(request=s.ImplicationInputSerializer, responses={201: s.ImplicationOutputSerializer})
    def create(self, request: Request) -> Response:
        data = s.ImplicationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        rule = rules.implication_create(
            child=values["child"],
            parent=values["parent"],
            activate=values["activate"],
            reason=values.get("reason", ""),
            actor=request.user,
            allow_cross_type=values["allow_cross_type"],
            vocabulary=_vocabulary(values),
        )
        return Response(s.ImplicationOutputSerializer(rule).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request={
            "multipart/form-data": s.ImplicationImportInputSerializer,
            "application/json": s.ImplicationImportInputSerializer,
        },
        responses=s.ImplicationImportOutputSerializer,
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="import",
        parser_classes=[MultiPartParser, FormParser, JSONParser],
        required_perms=["tags.add_tagimplication"],
    )
    def import_csv(self, request: Request) -> Response:
        """`child,parent` lines into a tag template (pending, or active for approvers who send
        `activate`); good lines are kept, each bad one listed with its line."""
        data = s.ImplicationImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        result = rules_io.implications_import_csv(
            vocabulary=_vocabulary(values) or vocabulary_default(),
            data=values.get("file") or values["text"],
            actor=request.user,
            activate=values["activate"],
        )
        return Response(s.ImplicationImportOutputSerializer(result).data)

    @extend_schema(request=None, responses=s.ImplicationOutputSerializer)
    @action(detail=True, methods=["post"], required_perms=APPROVE)
    def activate(self, request: Request, pk: str | None = None) -> Response:
        rule = rules.implication_activate(rule=self.get_object(), actor=request.user)
        return Response(s.ImplicationOutputSerializer(rule).data)

    @extend_schema(request=None, responses=s.ImplicationOutputSerializer)
    @action(detail=True, methods=["post"], required_perms=APPROVE)
    def retire(self, request: Request, pk: str | None = None) -> Response:
        rule = rules.implication_retire(
            rule=self.get_object(), actor=request.user, reject=request.query_params.get("reject") == "1"
        )
        return Response(s.ImplicationOutputSerializer(rule).data)


class DescriptionFilter(django_filters.FilterSet):
    media_item = IdFilter(field_name="media_item_id")
    kind = django_filters.ChoiceFilter(field_name="kind", choices=Description.Kind.choices)

    class Meta:
        model = Description
        fields: list[str] = []


class DescriptionViewSet(viewsets.ModelViewSet):
    """Descriptions (captions) of items or regions, with provenance and versions."""

    serializer_class = s.DescriptionOutputSerializer
    filterset_class = DescriptionFilter
    queryset = Description.objects.all()
    required_perms: list[str] | None = None

    @extend_schema(request=s.DescriptionInputSerializer, responses={201: s.DescriptionOutputSerializer})
    def create(self, request: Request) -> Response:
        data = s.DescriptionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        if "media_item" not in values:
            raise drf_serializers.ValidationError({"media_item": ["This field is required."]})
        item = media_selectors.media_item_get(item_id=values["media_item"], viewer=request.user)
        description = descriptions.description_create(
            media_item=item,
            text=values["text"],
            kind=values["kind"],
            label=values.get("label", ""),
            box=values.get("box"),
            actor=request.user,
        )
        return Response(s.DescriptionOutputSerializer(description).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.DescriptionInputSerializer, responses=s.DescriptionOutputSerializer)
    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = s.DescriptionInputSerializer(data=request.data, partial=kwargs.get("partial", False))
        data.is_valid(raise_exception=True)
        values = data.validated_data
        current = self.get_object()
        description = descriptions.description_update(
            description=current,
            text=values.get("text", current.text),
            kind=values.get("kind"),
            label=values.get("label"),
            box=values.get("box", "keep"),
            expected_version=values.get("row_version"),
            actor=request.user,
        )
        return Response(s.DescriptionOutputSerializer(description).data)

    def perform_destroy(self, instance: Description) -> None:
        descriptions.description_delete(description=instance)


class EffectiveRebuildApi(viewsets.ViewSet):
    """Rebuild effective tags of stale items (or all items with ?all=1) as a job."""

    required_perms = ["tags.approve_rules"]

    @extend_schema(
        request=None,
        responses={202: inline_serializer("RebuildAccepted", {"job": drf_serializers.DictField()})},
    )
    def create(self, request: Request) -> Response:
        job = rules.effective_rebuild_start(
            actor=request.user, reason="requested", everything=request.query_params.get("all") == "1"
        )
        body = job_accepted_body(job)  # type: ignore[arg-type]
        return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["job"]["url"]})


class MediaTagSetsApi(APIView):
    """An item's tag sets (`GET`) and adding one (`POST`: a source set, or tags into the curated set)."""

    required_perms = ["tags.add_tagset"]

    @extend_schema(responses=s.TagSetOutputSerializer(many=True))
    def get(self, request: Request, pk: str) -> Response:
        item = media_selectors.media_item_get(item_id=pk, viewer=request.user)
        sets = selectors.tag_set_list_for_item(media_item=item)
        return Response(s.TagSetOutputSerializer(sets, many=True).data)

    @extend_schema(request=s.TagSetAddInputSerializer, responses={201: s.TagSetOutputSerializer})
    def post(self, request: Request, pk: str) -> Response:
        item = media_selectors.media_item_get(item_id=pk, viewer=request.user)
        data = s.TagSetAddInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        tag_set = tag_set_add_to_item(
            media_item=item,
            kind=values["kind"],
            names=values["tags"],
            tag_source=values.get("tag_source", ""),
            actor=request.user,
        )
        created = selectors.tag_set_list_for_item(media_item=item).get(pk=tag_set.pk)
        return Response(s.TagSetOutputSerializer(created).data, status=status.HTTP_201_CREATED)
