"""`manage.py media_rehash`: new thumbnails and perceptual hashes for stored items.

See docs/operations.md#re-hashing-and-re-probing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.media.services.rehash import RehashBatch, media_rehash_batch, media_reprobe_animations_batch


class Command(BaseCommand):
    help = (
        "Re-make thumbnails and perceptual hashes from the originals: 16/32-bit images by "
        "default, every image with --all; with --animations, make animated GIF/WebP images videos. "
        "Batched by id; resume with --after-id or --checkpoint."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--all", action="store_true", help="every image and frame, not only deep ones")
        parser.add_argument(
            "--animations",
            action="store_true",
            help="instead: animated GIF/WebP stored as images become videos (duration, fps, frames)",
        )
        parser.add_argument("--batch-size", type=int, default=200, help="items per batch (one UPDATE each)")
        parser.add_argument("--after-id", type=int, default=0, help="start after this item id")
        parser.add_argument(
            "--checkpoint",
            type=Path,
            help="file holding the last finished id: read at the start, written after every batch",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size: int = options["batch_size"]
        if not 1 <= batch_size <= 10_000:
            raise CommandError("--batch-size must be between 1 and 10000.")
        after: int = options["after_id"]
        checkpoint: Path | None = options["checkpoint"]
        if checkpoint is not None and checkpoint.exists():
            text = checkpoint.read_text().strip()
            if not text.isdigit():
                raise CommandError(f"{checkpoint} does not hold an item id; delete it to start over.")
            after = max(after, int(text))
        if options["animations"] and options["all"]:
            raise CommandError("--animations and --all are separate runs; give one of them.")
        verb = "re-probed" if options["animations"] else "re-hashed"
        total = failures = 0
        while True:
            batch = self._batch(after, batch_size, options)
            if batch.last_id == after:
                break
            after = batch.last_id
            total += batch.done
            failures += len(batch.failed)
            for item_id, reason in batch.failed:
                self.stderr.write(f"item {item_id}: {reason}")
            if checkpoint is not None:
                checkpoint.write_text(f"{after}\n")
            self.stdout.write(f"{verb} {total} items (up to id {after})")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} items {verb}, {failures} failed."))

    def _batch(self, after: int, batch_size: int, options: dict[str, Any]) -> RehashBatch:
        if options["animations"]:
            return media_reprobe_animations_batch(after_id=after, batch_size=batch_size)
        return media_rehash_batch(after_id=after, batch_size=batch_size, everything=options["all"])
