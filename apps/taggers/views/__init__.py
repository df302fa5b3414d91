"""Taggers pages (docs/taggers.md#pages), one module per area."""
