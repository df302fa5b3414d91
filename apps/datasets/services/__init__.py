"""Writes for datasets (docs/datasets.md). Every service is one transaction: nothing half-saved."""

from apps.datasets.services.datasets import (
    dataset_create,
    dataset_delete,
    dataset_update,
    requirements_check,
    subset_create,
    subset_delete,
    subset_update,
)
from apps.datasets.services.members import members_edit, members_remove_matching

__all__ = [
    "dataset_create",
    "dataset_delete",
    "dataset_update",
    "members_edit",
    "members_remove_matching",
    "requirements_check",
    "subset_create",
    "subset_delete",
    "subset_update",
]
