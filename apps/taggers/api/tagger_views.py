"""API for taggers (`taggers/`, docs/api.md#taggers): define, train, run, versions, promotion and
rollback, threshold overrides, predictions and review. Parse, call one service or selector,
render."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.jobs.api.serializers import job_accepted_body
from apps.taggers.api import tagger_serializers as s
from apps.taggers.models import Tagger
from apps.taggers.selectors import predictions as selectors
from apps.taggers.services import apply, review, taggers, training, versions


def _parse(serializer_class: type[Any], data: Any) -> Any:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class TaggerViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Taggers: what they tag, their kind and network type, their versions. Reads need a
    signed-in user; writes the model permissions."""

    serializer_class = s.TaggerOutputSerializer
    queryset = Tagger.objects.all()
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> Any:
        return selectors.tagger_list()

    def get_object(self) -> Tagger:
        return selectors.tagger_get(tagger_id=self.kwargs["pk"])

    @extend_schema(request=s.TaggerInputSerializer, responses={201: s.TaggerOutputSerializer})
    def create(self, request: Request) -> Response:
        """Define a tagger (an `embedding_head` needs an embedding space; network `linear` or `mlp`)."""
        created = taggers.tagger_define(
            data=_parse(s.TaggerInputSerializer, request.data), owner=request.user
        )
        return Response(s.TaggerOutputSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.TaggerUpdateSerializer, responses=s.TaggerOutputSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        """Change description, network type, params, scope, stored threshold or tag types."""
        data = _parse(s.TaggerUpdateSerializer, request.data)
        return Response(
            s.TaggerOutputSerializer(taggers.tagger_change(tagger=self.get_object(), data=data)).data
        )

    def destroy(self, request: Request, pk: str) -> Response:
        taggers.tagger_delete(tagger=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.TrainInputSerializer, responses={202: dict})
    @action(detail=True, methods=["post"], url_path="train")
    def train(self, request: Request, pk: str) -> Response:
        """Train a new version on the curated tags (a job on `ml_cpu`); a version already queued
        or training is returned instead. A zero-shot tagger gets a ready version at once (201)."""
        data = _parse(s.TrainInputSerializer, request.data)
        version = training.tagger_train(tagger=self.get_object(), actor=request.user, seed=data["seed"])
        if version.job is None:  # zero-shot: nothing to train
            return Response(
                {"version": s.VersionOutputSerializer(version).data}, status=status.HTTP_201_CREATED
            )
        body = {**job_accepted_body(version.job), "version": s.VersionOutputSerializer(version).data}
        return Response(body, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.TaggerRunInputSerializer, responses={202: dict})
    @action(detail=True, methods=["post"], url_path="run")
    def run(self, request: Request, pk: str) -> Response:
        """Score the items of `query` and/or `items` with the active (or given) version (a job)."""
        data = _parse(s.TaggerRunInputSerializer, request.data)
        job = apply.tagger_run(
            tagger=self.get_object(),
            query=data["query"] or None,
            ids=data["items"],
            version=data["version"],
            actor=request.user,
        )
        return Response(job_accepted_body(job), status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=s.VersionOutputSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="versions")
    def versions(self, request: Request, pk: str) -> Response:
        """Every version, newest first, with status, counts, metrics and its training job."""
        rows = selectors.version_list(tagger=self.get_object())[:200]
        return Response(s.VersionOutputSerializer(rows, many=True).data)

    @extend_schema(request=s.TaggerPromoteInputSerializer, responses=s.TaggerOutputSerializer)
    @action(detail=True, methods=["post"], url_path="promote")
    def promote(self, request: Request, pk: str) -> Response:
        """Make a ready version active (409 for queued, training, failed or retired ones)."""
        data = _parse(s.TaggerPromoteInputSerializer, request.data)
        tagger = versions.version_promote(
            tagger=self.get_object(), number=data["version"], copy_overrides=data["copy_overrides"]
        )
        return Response(s.TaggerOutputSerializer(tagger).data)

    @extend_schema(request=None, responses=s.TaggerOutputSerializer)
    @action(detail=True, methods=["post"], url_path="rollback")
    def rollback(self, request: Request, pk: str) -> Response:
        """Make the previously active version active again."""
        return Response(s.TaggerOutputSerializer(versions.version_rollback(tagger=self.get_object())).data)

    @extend_schema(request=s.ThresholdInputSerializer, responses=dict)
    @action(detail=True, methods=["post"], url_path="thresholds")
    def thresholds(self, request: Request, pk: str) -> Response:
        """Override one tag's threshold on a version (the active one by default). Effective
        predictions change at once; nothing is re-scored."""
        data = _parse(s.ThresholdInputSerializer, request.data)
        version = selectors.version_for(tagger=self.get_object(), number=data["version"])
        override = versions.threshold_override_set(
            version=version, tag_id=data["tag"], threshold=data["threshold"], actor=request.user
        )
        return Response({"version": version.number, "tag": override.tag_id, "threshold": override.threshold})

    @extend_schema(request=s.ThresholdDeleteSerializer, responses={204: None})
    @action(detail=True, methods=["post"], url_path="thresholds/reset")
    def thresholds_reset(self, request: Request, pk: str) -> Response:
        """Drop a tag's override: the tuned threshold applies again."""
        data = _parse(s.ThresholdDeleteSerializer, request.data)
        version = selectors.version_for(tagger=self.get_object(), number=data["version"])
        versions.threshold_override_delete(version=version, tag_id=data["tag"])
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        parameters=[s.PredictionsQuerySerializer], responses=s.PredictionOutputSerializer(many=True)
    )
    @action(detail=True, methods=["get"], url_path="predictions")
    def predictions(self, request: Request, pk: str) -> Response:
        """Stored predictions of a version (active by default) by (item, tag), keyset-paged with
        `after_item`/`after_tag`; `effective=true` keeps those at or above their threshold."""
        query = _parse(s.PredictionsQuerySerializer, request.query_params)
        version = selectors.version_for(tagger=self.get_object(), number=query["version"])
        rows = selectors.predictions_page(
            version=version,
            item_id=query["item"],
            tag_id=query["tag"],
            effective=query["effective"],
            after=(query["after_item"], query["after_tag"]),
            limit=query["limit"],
        )
        return Response(s.PredictionOutputSerializer(rows, many=True).data)

    @extend_schema(parameters=[s.ReviewQueueQuerySerializer], responses=s.ReviewQueueRowSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="review")
    def review_queue(self, request: Request, pk: str) -> Response:
        """The next undecided predictions of the active version, most uncertain first;
        keyset-paged: `after` = the last row's `cursor`."""
        query = _parse(s.ReviewQueueQuerySerializer, request.query_params)
        after = selectors.review_cursor_parse(query["after"]) if query["after"] else None
        version = selectors.version_for(tagger=self.get_object(), number=None)
        rows = selectors.review_queue(version=version, limit=query["limit"], after=after)
        return Response(s.ReviewQueueRowSerializer(rows, many=True).data)

    @extend_schema(request=s.TaggerReviewInputSerializer, responses=dict)
    @action(detail=True, methods=["post"], url_path="review/accept")
    def review_accept(self, request: Request, pk: str) -> Response:
        """Accept a prediction: promote it into the item's curated set."""
        data = _parse(s.TaggerReviewInputSerializer, request.data)
        version = selectors.version_for(tagger=self.get_object(), number=data["version"])
        result = review.prediction_accept(
            version=version, item_id=data["item"], tag_id=data["tag"], actor=request.user
        )
        return Response(result)

    @extend_schema(request=s.TaggerReviewInputSerializer, responses=dict)
    @action(detail=True, methods=["post"], url_path="review/reject")
    def review_reject(self, request: Request, pk: str) -> Response:
        """Reject a prediction: a curated tombstone, a negative for the next training."""
        data = _parse(s.TaggerReviewInputSerializer, request.data)
        version = selectors.version_for(tagger=self.get_object(), number=data["version"])
        result = review.prediction_reject(
            version=version, item_id=data["item"], tag_id=data["tag"], actor=request.user
        )
        return Response(result)

    @extend_schema(request=s.BatchAcceptInputSerializer, responses=dict)
    @action(detail=True, methods=["post"], url_path="review/batch-accept")
    def review_batch_accept(self, request: Request, pk: str) -> Response:
        """Accept every undecided prediction with confidence ≥ `min_confidence`."""
        data = _parse(s.BatchAcceptInputSerializer, request.data)
        version = selectors.version_for(tagger=self.get_object(), number=data["version"])
        result = review.predictions_batch_accept(
            version=version, min_confidence=data["min_confidence"], actor=request.user
        )
        return Response(result)

    @extend_schema(responses=s.AgreementOutputSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="review/agreement")
    def review_agreement(self, request: Request, pk: str) -> Response:
        """Per tag, precision and recall of the active version against reviewers' decisions."""
        version = selectors.version_for(tagger=self.get_object(), number=None)
        return Response(
            s.AgreementOutputSerializer(selectors.review_agreement(version=version), many=True).data
        )
