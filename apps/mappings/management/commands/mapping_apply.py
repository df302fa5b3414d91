"""Apply a mapping profile to the items of a query from the shell (docs/mappings.md#command).

manage.py mapping_apply e621 --q "rating:sfw" --dry-run    # aggregates only
manage.py mapping_apply e621 --q "rating:sfw"               # apply (a job above 10,000 items)
manage.py mapping_apply e621 --ids 1,2,3 --inline           # run a large apply's job here
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from apps.core.exceptions import DomainError
from apps.core.ints import int_param
from apps.mappings.selectors import profile_get
from apps.mappings.services.apply import mapping_apply, mapping_apply_run
from apps.mappings.services.preview import mapping_preview


class Command(BaseCommand):
    help = "Apply (or with --dry-run preview) a mapping profile on the items of --q and/or --ids."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("profile", help="profile slug or id")
        parser.add_argument("--q", default="", help="a search query choosing the items")
        parser.add_argument("--ids", default="", help="comma-separated item ids")
        parser.add_argument("--dry-run", action="store_true", help="print the preview's aggregates only")
        parser.add_argument("--inline", action="store_true", help="run a queued apply job in this process")
        parser.add_argument("--user", default="", help="username recorded as the actor")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            ids = [
                int_param(i, field="--ids", minimum=1, default=0)
                for i in options["ids"].split(",")
                if i.strip()
            ]
        except DomainError as exc:
            raise CommandError(f"{exc.message} (--ids takes comma-separated item ids)") from exc
        actor = None
        if options["user"]:
            actor = get_user_model().objects.filter(username=options["user"]).first()
            if actor is None:
                raise CommandError(f"There is no user {options['user']!r}.")
        try:
            profile = profile_get(ref=options["profile"])
            if options["dry_run"]:
                body = mapping_preview(profile=profile, q=options["q"], ids=ids, sample=0, actor=actor)
                if body["job"] is not None:
                    body["job"] = body["job"].pk
                self.stdout.write(json.dumps(body, indent=2, default=str))
                return
            outcome = mapping_apply(profile=profile, q=options["q"], ids=ids, actor=actor)
            if outcome.job is not None and options["inline"]:
                mapping_apply_run(job_id=outcome.job.pk)
                outcome.operation.refresh_from_db()
        except DomainError as err:
            raise CommandError(err.message) from err
        operation = outcome.operation
        state = f"job {outcome.job.pk} " if outcome.job is not None and not options["inline"] else ""
        self.stdout.write(
            f"operation {operation.pk} {state}{operation.status}: {json.dumps(operation.counters)}"
        )
