"""Local development: the embedded defaults, DEBUG on unless the environment says otherwise."""

from baggintag.settings.base import *  # noqa: F403
from baggintag.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
