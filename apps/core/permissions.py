"""API permissions: any signed-in user reads; writes need the model permission."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions
from rest_framework.request import Request


class ModelPermissionsOrReadOnly(DjangoModelPermissions):
    """Authenticated reads; writes checked against add/change/delete model permissions.

    Views without a queryset (commands) declare `required_perms` instead.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if request.method in SAFE_METHODS:
            return True
        required = getattr(view, "required_perms", None)
        if required is not None:
            return user.has_perms(required)
        return super().has_permission(request, view)
