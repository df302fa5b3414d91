"""Many API clients editing the same items at once, with bulk operations and undos beside them.

    .venv/bin/python bench/concurrency.py                                     # SQLite, 16 × 60 s
    .venv/bin/python bench/concurrency.py --db mysql://root@127.0.0.1:3306/  # MariaDB
    .venv/bin/python bench/concurrency.py --clients 4 --seconds 10           # a quick look

Flags:
  --db URL         `sqlite` (a throwaway file in the temp folder, the default) or a MariaDB server
                   URL; the script creates and drops the URL's database there (default name
                   `bench_concurrency`)
  --clients N      concurrent API clients, each a thread with its own connection (default 16)
  --seconds S      how long they run (default 60)
  --items N        items, each with a curated tag set, that every client edits (default 24)
  --shared-tags N  tags every client adds and removes (default 8), the contended rows
  --bulk P         share of a client's requests that are bulk add/remove operations (default 0.10)
  --undo P         share that undo one of the client's own applied operations (default 0.05)
  --retries N      times a client re-reads and retries an edit answered 409 (default 5)
  --seed N         random seed (default 1)

Each client loops: read a tag set's `row_version`, then `append-tags` (a shared tag and a marker
tag unique to this request) or `remove-tags` (a shared tag) with that version, re-reading and
retrying on 409; now and then a synchronous bulk add or remove of a shared tag on a few items
(`POST /api/tags/bulk`), or an undo of one of its own operations. Requests go through Django's
full stack (middleware, DRF, token authentication) with the test client, no network.

Reported: requests by status, 5xx count, 503 `core.busy` count, contention retries, edits given
up after the 409 retries, lost updates (markers acknowledged with a 2xx but missing from the
final tag set: nothing in the run removes markers) and counters that differ from a recount
(TagSet.assignment_count, TagStat.current_count, Tag.media_count against EffectiveTag).
Figures go in bench/README.md with the database and the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import platform
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "bench_concurrency"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--shared-tags", type=int, default=8)
    parser.add_argument("--bulk", type=float, default=0.10)
    parser.add_argument("--undo", type=float, default=0.05)
    parser.add_argument("--retries", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    return parser.parse_args()


def django_setup(db: str, work: Path) -> None:
    """Point Django at a fresh bench database and migrate it."""
    sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "baggintag.settings.test"
    os.environ["BAGGINTAG_DATA_DIR"] = str(work / "data")
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_ALLOWED_HOSTS"] = "testserver,localhost"
    mysql = db != "sqlite"
    if mysql:
        parts = urlsplit(db)
        name = parts.path.strip("/") or BENCH_DB
        os.environ["TEST_DATABASE_URL"] = urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))
    else:
        os.environ["TEST_DATABASE_URL"] = f"sqlite:///{work / 'bench.sqlite3'}"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if mysql:
        name = connection.settings_dict["NAME"]
        with connection._nodb_cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    call_command("migrate", verbosity=0)


def drop_database(db: str) -> None:
    if db == "sqlite":
        return
    from django.db import connection

    name = connection.settings_dict["NAME"]
    connection.close()
    with connection._nodb_cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")


class RetryCounter(logging.Handler):
    """Counts the request guard's "retrying" log lines (one per contention retry)."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "retrying" in record.getMessage():  # Handler.handle holds the handler's lock here
            self.count += 1


@dataclass
class Library:
    item_ids: list[int]
    set_ids: list[int]
    shared: list[str]
    tokens: list[str]


def library_make(args: argparse.Namespace) -> Library:
    """Items with a curated set each (made through the API), and one curator with a token per client."""
    from django.contrib.auth.models import User
    from rest_framework.authtoken.models import Token

    from apps.core.services import curators_group_ensure
    from apps.media.models import MediaItem

    group = curators_group_ensure()
    tokens = []
    for n in range(args.clients):
        user = User.objects.create_user(f"client{n}", password=f"pw-client-{n}-bench")
        user.groups.add(group)
        tokens.append(Token.objects.create(user=user).key)
    rows = [
        MediaItem(
            kind=MediaItem.Kind.IMAGE,
            name=f"item{n}.jpg",
            sha256=hashlib.sha256(f"bench-{n}".encode()).hexdigest(),
            storage_key=f"bench/{n}",
            format="jpeg",
            mime_type="image/jpeg",
            size_bytes=1000,
        )
        for n in range(args.items)
    ]
    MediaItem.objects.bulk_create(rows)
    item_ids = sorted(MediaItem.objects.values_list("pk", flat=True))
    api = client(tokens[0])
    set_ids = []
    for item_id in item_ids:
        response = api.post(
            f"/api/media/{item_id}/tag-sets", {"kind": "curated", "tags": ["base"]}, format="json"
        )
        assert response.status_code == 201, response.content
        set_ids.append(int(response.json()["id"]))
    shared = [f"c_{n:02d}" for n in range(1, args.shared_tags + 1)]
    return Library(item_ids=item_ids, set_ids=set_ids, shared=shared, tokens=tokens)


def client(token: str) -> Any:
    from rest_framework.test import APIClient

    api = APIClient(raise_request_exception=False)
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)
    server_errors: Counter = field(default_factory=Counter)  # (status, request kind)
    gave_up: int = 0
    busy: int = 0
    acknowledged: dict[int, set[str]] = field(default_factory=dict)
    operations: int = 0
    undos: int = 0
    errors: list[str] = field(default_factory=list)

    def merge(self, other: Tally) -> None:
        self.statuses.update(other.statuses)
        self.server_errors.update(other.server_errors)
        self.gave_up += other.gave_up
        self.busy += other.busy
        self.operations += other.operations
        self.undos += other.undos
        self.errors += other.errors[:5]
        for set_id, markers in other.acknowledged.items():
            self.acknowledged.setdefault(set_id, set()).update(markers)


class Client:
    """One API client's loop (one thread, one connection)."""

    def __init__(self, n: int, lib: Library, args: argparse.Namespace, deadline: float) -> None:
        self.n, self.lib, self.args, self.deadline = n, lib, args, deadline
        self.rng = random.Random(args.seed * 1000 + n)
        self.tally = Tally()
        self.own_operations: list[int] = []
        self.serial = 0

    def record(self, response: Any, kind: str) -> Any:
        self.tally.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.tally.server_errors[f"{response.status_code} {kind}"] += 1
            if response.status_code == 503 and response.json().get("code") == "core.busy":
                self.tally.busy += 1
            self.tally.errors.append(f"{response.status_code} {response.content[:200]!r}")
        return response

    def run(self) -> None:
        from django.db import connections

        api = client(self.lib.tokens[self.n])
        try:
            while time.monotonic() < self.deadline:
                roll = self.rng.random()
                if roll < self.args.bulk:
                    self.bulk(api)
                elif roll < self.args.bulk + self.args.undo and self.own_operations:
                    self.undo(api)
                else:
                    self.edit(api)
        finally:
            connections.close_all()

    def edit(self, api: Any) -> None:
        set_id = self.rng.choice(self.lib.set_ids)
        tag = self.rng.choice(self.lib.shared)
        adding = self.rng.random() < 0.6
        self.serial += 1
        marker = f"m_{self.n}_{self.serial}"
        body: dict[str, Any] = {"tags": [tag, marker] if adding else [tag]}
        how = "append-tags" if adding else "remove-tags"
        for _ in range(self.args.retries + 1):
            read = self.record(api.get(f"/api/tag-sets/{set_id}"), "read")
            if read.status_code != 200:
                return
            body["row_version"] = read.json()["row_version"]
            response = self.record(api.post(f"/api/tag-sets/{set_id}/{how}", body, format="json"), how)
            if response.status_code == 409:
                continue
            if adding and 200 <= response.status_code < 300:
                self.tally.acknowledged.setdefault(set_id, set()).add(marker)
            return
        self.tally.gave_up += 1

    def bulk(self, api: Any) -> None:
        ids = self.rng.sample(self.lib.item_ids, min(len(self.lib.item_ids), self.rng.randint(2, 10)))
        body = {
            "action": self.rng.choice(["add", "remove"]),
            "tags": [self.rng.choice(self.lib.shared)],
            "ids": ids,
        }
        response = self.record(api.post("/api/tags/bulk", body, format="json"), f"bulk {body['action']}")
        if response.status_code == 200:
            self.tally.operations += 1
            self.own_operations.append(int(response.json()["operation"]["id"]))

    def undo(self, api: Any) -> None:
        operation_id = self.own_operations.pop(self.rng.randrange(len(self.own_operations)))
        response = self.record(
            api.post(f"/api/tag-operations/{operation_id}/undo", {}, format="json"), "undo"
        )
        if response.status_code == 200:
            self.tally.undos += 1


def lost_updates(acknowledged: dict[int, set[str]]) -> int:
    """Markers a client was told were saved that the final sets do not hold."""
    from apps.tags.models import TagAssignment

    current: dict[int, set[str]] = {}
    rows = TagAssignment.objects.filter(state=TagAssignment.State.CURRENT, tag__name__startswith="m_")
    for set_id, name in rows.values_list("tagset_id", "tag__name"):
        current.setdefault(set_id, set()).add(name)
    return sum(len(markers - current.get(set_id, set())) for set_id, markers in acknowledged.items())


def counter_drift() -> dict[str, int]:
    """Stored counters that differ from a recount (nothing is repaired)."""
    from django.db.models import Count

    from apps.tags.models import EffectiveTag, Tag, TagAssignment, TagSet, TagStat

    current = TagAssignment.objects.filter(state=TagAssignment.State.CURRENT)
    per_set = dict(current.values_list("tagset_id").annotate(n=Count("*")).values_list("tagset_id", "n"))
    sets = sum(1 for pk, n in TagSet.objects.values_list("pk", "assignment_count") if per_set.get(pk, 0) != n)
    per_stat = {
        (tag, kind): n
        for tag, kind, n in current.values_list("tag_id", "kind")
        .annotate(n=Count("*"))
        .values_list("tag_id", "kind", "n")
    }
    stats = sum(
        1
        for tag, kind, n in TagStat.objects.values_list("tag_id", "set_kind", "current_count")
        if per_stat.get((tag, kind), 0) != n
    )
    effective = dict(EffectiveTag.objects.values_list("tag_id").annotate(n=Count("media_item_id")))
    tags = sum(1 for pk, n in Tag.objects.values_list("pk", "media_count") if effective.get(pk, 0) != n)
    return {"tag_sets": sets, "tag_stats": stats, "tag_media_counts": tags}


def stale_items() -> int:
    from apps.media.models import MediaItem

    return MediaItem.objects.filter(effective_stale=True).count()


def report(args: argparse.Namespace, tally: Tally, retries: int, elapsed: float) -> int:
    from django.db import connection

    total = sum(tally.statuses.values())
    server_errors = sum(n for code, n in tally.statuses.items() if code >= 500)
    lost = lost_updates(tally.acknowledged)
    drift = counter_drift()
    print(f"database: {connection.vendor} {connection.Database.__name__}; machine: {platform.platform()}")
    print(f"clients: {args.clients}, seconds: {elapsed:.0f}, items: {args.items}, shared: {args.shared_tags}")
    rate = total / max(elapsed, 0.001)
    print(f"requests: {total} ({rate:.0f}/s); by status: {dict(sorted(tally.statuses.items()))}")
    print(f"bulk operations applied: {tally.operations}, undone: {tally.undos}")
    print(f"5xx: {server_errors} (503 core.busy: {tally.busy}); by request: {dict(tally.server_errors)}")
    print(f"contention retries (request guard and bulk chunks): {retries}")
    print(f"edits given up after {args.retries} retries on 409: {tally.gave_up}")
    acknowledged = sum(len(m) for m in tally.acknowledged.values())
    print(f"lost updates: {lost} of {acknowledged} acknowledged marker tags")
    print(f"counters differing from a recount: {drift}; items awaiting an effective rebuild: {stale_items()}")
    for line in tally.errors[:2]:
        print(f"  e.g. {line}")
    return 1 if server_errors or lost or any(drift.values()) else 0


def main() -> None:
    args = parse_args()
    work = Path(tempfile.mkdtemp(prefix="bt-bench-concurrency-"))
    try:
        django_setup(args.db, work)
        lib = library_make(args)
        retries = RetryCounter()
        for name in ("apps.core.middleware", "apps.tags.services.operations.run"):
            logging.getLogger(name).addHandler(retries)  # counted, not printed
            logging.getLogger(name).setLevel(logging.INFO)
            logging.getLogger(name).propagate = False
        logging.getLogger("django.request").setLevel(logging.CRITICAL)
        start = time.monotonic()
        clients = [Client(n, lib, args, start + args.seconds) for n in range(args.clients)]
        threads = [threading.Thread(target=c.run) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - start
        tally = Tally()
        for c in clients:
            tally.merge(c.tally)
        status = report(args, tally, retries.count, elapsed)
        drop_database(args.db)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
