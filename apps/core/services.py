"""Account setup shared by the bootstrap command and migrations."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission
from django.db.models import Q

CURATORS = "curators"
# Curators add, change and delete media and tags; they see (and cancel their own) jobs. They
# also run training sessions, Textual Inversion sets, base-model profiles and exports.
_CURATOR_APPS = ("media", "tags", "mappings", "taggers", "datasets", "intake", "training")


def curators_group_ensure() -> Group:
    """Create or refresh the 'curators' group that non-staff users join to curate."""
    group, _ = Group.objects.get_or_create(name=CURATORS)
    perms = Permission.objects.filter(
        Q(content_type__app_label__in=_CURATOR_APPS)
        | Q(content_type__app_label="jobs", codename__startswith="view_")
    )
    group.permissions.set(perms)
    return group
