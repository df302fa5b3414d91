"""`manage.py export_session <session> [--folder PATH] [--zip FILE]`: the export job's service,
run here and now (docs/training.md#command). Progress goes to stderr."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.exceptions import DomainError
from apps.training import selectors
from apps.training.services import exports


class Command(BaseCommand):
    help = "Export a training session's bundle (its latest version) into a folder or a zip file."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("session", help="The session's id or slug")
        parser.add_argument(
            "--folder", default="", help="A server folder under BAGGINTAG_TRAINING_FOLDER_ROOT"
        )
        parser.add_argument("--zip", default="", help="Also write the bundle as this zip file")

    def handle(self, *args: Any, **options: Any) -> None:
        ref = str(options["session"])
        try:
            session = (
                selectors.session_get(session_id=ref)
                if ref.isdigit()
                else selectors.session_list().filter(slug=ref).first()
            )
            if session is None:
                raise CommandError(f"No training session {ref!r}.")
            export = exports.export_sync(session=session, folder=options["folder"], report=self._progress)
            if options["zip"]:
                target = Path(options["zip"])
                target.parent.mkdir(parents=True, exist_ok=True)
                _name, chunks = exports.export_zip_stream(export)
                partial = target.with_name(target.name + ".part")
                with partial.open("wb") as out:
                    for chunk in chunks:
                        out.write(chunk)
                partial.replace(target)
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        sys.stderr.write("\n")
        for found in export.findings:
            sys.stderr.write(f"{found['severity']} {found['id']} {found['where']}: {found['message']}\n")
        self.stdout.write(
            f"export {export.pk}: {export.item_count} images, {export.bundle_size} bytes "
            f"in {export.bundle_path}" + (f"; zip {options['zip']}" if options["zip"] else "")
        )

    def _progress(self, done: int, total: int) -> None:
        width = shutil.get_terminal_size((80, 20)).columns
        line = f"\r{done}/{total}" if total else f"\r{done}"
        sys.stderr.write(line[:width])
        sys.stderr.flush()
