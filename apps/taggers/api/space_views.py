"""API for embedding spaces (`embedding-spaces/`, docs/api.md#embedding-spaces): parse, call one
service or selector, render."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apps.jobs.api.serializers import job_accepted_body
from apps.taggers.api import space_serializers as s
from apps.taggers.models import EmbeddingSpace
from apps.taggers.selectors import spaces as selectors
from apps.taggers.services import spaces


def _parse(serializer_class: type[Any], data: Any) -> Any:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class EmbeddingSpaceViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Embedding spaces: a frozen image encoder with exact weights and preprocessing, and the
    vectors of the items embedded in it. Reads need a signed-in user; writes the model
    permissions."""

    serializer_class = s.SpaceOutputSerializer
    queryset = EmbeddingSpace.objects.all()
    lookup_value_regex = "[0-9]+"

    def get_queryset(self) -> Any:
        return selectors.space_list()

    def get_object(self) -> EmbeddingSpace:
        return selectors.space_get(space_id=self.kwargs["pk"])

    @extend_schema(request=s.SpaceInputSerializer, responses={201: s.SpaceOutputSerializer})
    def create(self, request: Request) -> Response:
        """Create a space from a provisioned open_clip model. 400 for refs that would download
        (pretrained tags, hf-hub:); 409 naming the missing directory and files when the weights
        are not provisioned, or when a space has these weights and preprocessing already."""
        data = _parse(s.SpaceInputSerializer, request.data)
        created = spaces.space_create(**data)
        return Response(s.SpaceOutputSerializer(created).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.SpaceUpdateSerializer, responses=s.SpaceOutputSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        """Only the description changes (new weights or preprocessing make a new space)."""
        data = _parse(s.SpaceUpdateSerializer, request.data)
        updated = spaces.space_update(space=self.get_object(), description=data["description"])
        return Response(s.SpaceOutputSerializer(updated).data)

    def destroy(self, request: Request, pk: str) -> Response:
        """Delete the space and its vectors (409 while taggers use it)."""
        spaces.space_delete(space=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=s.EmbedInputSerializer, responses={202: dict})
    @action(detail=True, methods=["post"], url_path="embed")
    def embed(self, request: Request, pk: str) -> Response:
        """Start the embed job (queue `ml`) over the items of `query`/`items`, or every image and
        frame; items that have a vector already are skipped. A running job is returned as is."""
        data = _parse(s.EmbedInputSerializer, request.data)
        job = spaces.space_embed(
            space=self.get_object(), query=data["query"], item_ids=data["items"], actor=request.user
        )
        return Response(job_accepted_body(job), status=status.HTTP_202_ACCEPTED)
