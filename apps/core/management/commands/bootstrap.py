"""Create the first admin account (password printed once) and the curators group."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from apps.core.services import curators_group_ensure


class Command(BaseCommand):
    help = "Create the 'admin' superuser if no superuser exists, printing its password once."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        curators_group_ensure()
        User = get_user_model()
        python = _python()
        existing = (
            User.objects.filter(is_superuser=True).order_by("pk").values_list("username", flat=True).first()
        )
        if existing is not None:
            self.stdout.write(
                f"An administrator account exists already ('{existing}'). Forgot its password? "
                f"Set a new one with:\n  {python} manage.py changepassword {existing}"
            )
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created administrator '{username}' with password: {password}\n"
                "  (shown only this once: write it down, or change it with "
                f"`{python} manage.py changepassword {username}`)"
            )
        )


def _python() -> str:
    """The interpreter running this command as a user would type it: `.venv/bin/python` from a
    checkout's virtual environment, else its full path."""
    executable = Path(sys.executable)
    try:
        return str(executable.relative_to(Path.cwd()))
    except ValueError:
        return str(executable)
