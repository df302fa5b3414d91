"""Writes an export plan (`apps.training.plan.Plan`) to a bundle folder and streams it as a zip
(docs/export-bundle.md)."""
