"""Create the first admin account (password printed once) and the curators group."""

from __future__ import annotations

import secrets
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
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An administrator account exists already.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS(
                f"Created administrator '{username}' with password: {password}\n"
                "  (shown only this once: write it down, or change it with "
                f"`python manage.py changepassword {username}`)"
            )
        )
