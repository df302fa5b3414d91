"""Baggintag: preparing Stable Diffusion training data at scale."""

from baggintag.celery import app as celery_app

__all__ = ("celery_app",)
