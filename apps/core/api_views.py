"""Endpoints shared by all API clients: the API root and authentication."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.urls import NoReverseMatch, URLPattern, URLResolver, get_resolver, reverse
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from apps.core.exceptions import DomainError


class TokenInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


class LoginThrottle(AnonRateThrottle):
    rate = "20/min"


class AuthTokenApi(APIView):
    """Exchange a username and password for an API token (`Authorization: Token <key>`)."""

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes = [LoginThrottle]

    @extend_schema(
        request=TokenInputSerializer,
        responses={200: inline_serializer("TokenOutput", {"token": serializers.CharField()})},
    )
    def post(self, request: Request) -> Response:
        data = TokenInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=data.validated_data["username"],
            password=data.validated_data["password"],
        )
        if user is None or not user.is_active:
            raise DomainError("Wrong user name or password.", code="auth.invalid_credentials")
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key}, status=status.HTTP_200_OK)


def _resource_names(patterns: list[Any], prefix: str = "") -> list[str]:
    """Names (namespace `api`) of every route under /api/ that takes no arguments."""
    names: list[str] = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            names += _resource_names(entry.url_patterns)
        elif isinstance(entry, URLPattern) and entry.name and not entry.pattern.regex.groupindex:
            names.append(entry.name)
    return list(dict.fromkeys(names))


class ApiRootApi(APIView):
    """The API root: a link to every resource and action under /api/ that needs no id
    (docs/api.md#the-api-root); items are then found through those lists."""

    permission_classes = [AllowAny]

    @extend_schema(
        responses={
            200: inline_serializer(
                "ApiRoot",
                {
                    "docs": serializers.URLField(),
                    "schema": serializers.URLField(),
                    "resources": serializers.DictField(child=serializers.URLField()),
                },
            )
        }
    )
    def get(self, request: Request) -> Response:
        resolver = get_resolver()
        api = next(
            entry
            for entry in resolver.url_patterns
            if isinstance(entry, URLResolver) and entry.namespace == "api"
        )
        links = {}
        for name in _resource_names(api.url_patterns):
            if name in ("root", "docs", "schema"):
                continue
            try:
                path = reverse(f"api:{name}")
            except NoReverseMatch:
                continue
            links[name] = request.build_absolute_uri(path.replace("/?", "/").rstrip("?"))
        return Response(
            {
                "docs": request.build_absolute_uri(reverse("api:docs")),
                "schema": request.build_absolute_uri(reverse("api:schema")),
                "resources": dict(sorted(links.items())),
            }
        )
