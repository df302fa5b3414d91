"""SQL lookups that behave the same on SQLite and MariaDB (byte-exact, case-sensitive)."""

from __future__ import annotations

from typing import Any

from django.db.models import Lookup


class ExactBytes(Lookup):  # type: ignore[type-arg]
    """Byte-for-byte equality; MariaDB's default collations fold case, accents and pad spaces.

    The plain `=` keeps the column's index usable on MariaDB; the binary re-check makes it exact.
    """

    lookup_name = "exact_bytes"

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        params = [*lhs_params, *rhs_params]
        if connection.vendor == "mysql":
            return f"({lhs} = {rhs} AND {lhs} COLLATE utf8mb4_bin = {rhs})", params * 2
        return f"{lhs} = {rhs}", params


class NameGlob(Lookup):  # type: ignore[type-arg]
    """A `*` pattern over a name, case-sensitive on both databases (GLOB / binary LIKE).

    The right-hand side is the tuple of literal segments between the `*`s.
    """

    lookup_name = "name_glob"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        parts: tuple[str, ...] = self.rhs
        if connection.vendor == "sqlite":
            special = {"*": "[*]", "?": "[?]", "[": "[[]"}
            pattern = "*".join("".join(special.get(c, c) for c in part) for part in parts)
            return f"{lhs} GLOB %s", [*lhs_params, pattern]
        escape = {"\\": "\\\\", "%": "\\%", "_": "\\_"}
        pattern = "%".join("".join(escape.get(c, c) for c in part) for part in parts)
        if connection.vendor == "mysql":
            return f"{lhs} COLLATE utf8mb4_bin LIKE %s", [*lhs_params, pattern]
        return f"{lhs} LIKE %s", [*lhs_params, pattern]
