"""Provision model weights from a mirror (or, on a connected host, a pinned download) and check
them (docs/taggers.md#provisioning).

manage.py models provision open_clip laion/CLIP-ViT-B-32 --name vit-b-32 --revision <sha> --from-dir /mirror/x
manage.py models verify [--kind open_clip] [--name vit-b-32]
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.exceptions import DomainError
from apps.taggers.engine.provision import KINDS
from apps.taggers.services import provisioning


class Command(BaseCommand):
    help = "Provision model weights into BAGGINTAG_MODEL_DIR (with MANIFEST.json) or verify them."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("provision", help="copy a model in and write its MANIFEST.json")
        add.add_argument("kind", choices=KINDS)
        add.add_argument("repo", help="where it comes from: owner/repo (recorded in the manifest)")
        add.add_argument("--name", required=True, help="directory name under <model dir>/<kind>/")
        add.add_argument("--revision", default="", help="the pinned revision (commit hash)")
        add.add_argument("--from-dir", default="", help="a mirrored copy of the repository (offline)")
        add.add_argument("--licence", default="")
        add.add_argument("--extras", default="", help="JSON: kind extras (thresholds, input size)")
        add.add_argument("--replace", action="store_true", help="replace an existing directory")
        check = sub.add_parser("verify", help="hash every provisioned file against its manifest")
        check.add_argument("--kind", choices=KINDS)
        check.add_argument("--name")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["action"] == "provision":
                self._provision(options)
            else:
                self._verify(options)
        except DomainError as err:
            raise CommandError(err.message) from err

    def _provision(self, options: dict[str, Any]) -> None:
        try:
            extras = json.loads(options["extras"]) if options["extras"] else None
        except ValueError as exc:
            raise CommandError(f"--extras is not JSON ({exc}).") from exc
        done = provisioning.models_provision(
            kind=options["kind"],
            repo=options["repo"],
            name=options["name"],
            revision=options["revision"],
            from_dir=options["from_dir"],
            licence=options["licence"],
            extras=extras,
            replace=options["replace"],
        )
        self.stdout.write(f"provisioned {done.kind}/{done.name}: {len(done.files)} files in {done.directory}")

    def _verify(self, options: dict[str, Any]) -> None:
        results = provisioning.models_verify(kind=options.get("kind"), name=options.get("name"))
        if not results:
            raise CommandError("No provisioned model matches (nothing under the model directory).")
        for result in results:
            self.stdout.write(f"{'ok' if result.ok else 'FAILED'} {result.directory}")
            for problem in result.problems:
                self.stdout.write(f"  {problem}")
        if not all(r.ok for r in results):
            raise CommandError("Some model files are missing or differ from their manifests.")
