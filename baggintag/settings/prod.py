"""Production (the default of wsgi.py, asgi.py and celery.py): base.py, stricter about secrets.

base.py falls back to a key generated into the data folder, which suits one machine
(scripts/run.sh); web and worker hosts sharing a database need one key given to all, so this
refuses to start without DJANGO_SECRET_KEY, before it touches the data folder.
DEBUG stays off unless DJANGO_DEBUG says otherwise.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

environ.Env.read_env(Path(__file__).resolve().parent.parent.parent / ".env", overwrite=False)
if not environ.Env().str("DJANGO_SECRET_KEY", default=""):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. Production settings (baggintag.settings.prod) need the same "
        "secret key on every host: set it in the environment or .env (see .env.example). "
        "For one machine without a key, run scripts/run.sh or use DJANGO_SETTINGS_MODULE="
        "baggintag.settings.base."
    )

from baggintag.settings.base import *  # noqa: E402, F403
from baggintag.settings.base import env  # noqa: E402

SECRET_KEY = env.str("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
