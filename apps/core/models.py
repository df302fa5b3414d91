"""Shared model bases and fields."""

from __future__ import annotations

from typing import Any

from django.db import models


class BaseModel(models.Model):
    """Abstract base: creation and update timestamps that drive ordering and sweeps."""

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class BinaryCharField(models.CharField):
    """A CharField compared byte-for-byte on MariaDB (utf8mb4_bin); SQLite already does.

    MariaDB's default collation folds case and accents and pads spaces, which would make
    `é` equal `e`; names are normalised in Python and compared exactly in SQL.
    """

    def db_parameters(self, connection: Any) -> dict[str, Any]:
        params = super().db_parameters(connection)
        if connection.vendor == "mysql":
            params["collation"] = "utf8mb4_bin"
        return params
