"""Schema-driven fuzzing of every API operation (schemathesis; docs/api.md#schema).

Each operation of the OpenAPI schema gets a bounded number of generated requests
(FUZZ_EXAMPLES, derandomised so CI sees the same cases every run), once as a curator (a normal
user with write permissions) and once as staff. Every answer must not be a 5xx, and every
answer whose status the schema documents must match the documented body. The library holds a
few real rows first so that small generated ids reach real objects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error, response_schema_conformance

from apps.core.services import curators_group_ensure
from tests.media.factories import make_item

# `slow`: a few minutes; scripts/test.sh runs it on both databases, scripts/quicktest.sh skips it.
pytestmark = [pytest.mark.django_db, pytest.mark.slow]

FUZZ_EXAMPLES = 4  # generated requests per operation and role

schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = WSGIHandler()

FUZZ_SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture
def fuzz_headers(db, settings) -> Iterator[dict[str, dict[str, str]]]:
    """Tokens for a curator and a staff user, a small library, and Django's handler called the way
    its test client calls it (the per-request connection cleanup would end the test transaction)."""
    settings.BAGGINTAG_URL_TIMEOUT = 1.0
    curator = User.objects.create_user("fuzz-curator", password="pw-fuzz-curator-1")
    curator.groups.add(curators_group_ensure())
    staff = User.objects.create_superuser("fuzz-staff", password="pw-fuzz-staff-1")
    for n in range(2):
        make_item(["cat", f"tag_{n}"], seed=n, size=(32, 24), tag_source="booru", added_by=curator)
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield {
            role: {"Authorization": f"Token {Token.objects.create(user=user).key}"}
            for role, user in (("curator", curator), ("staff", staff))
        }
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _offline(case: Any) -> None:
    """Keep generated uploads off the network: URL inputs are dropped (file inputs stay)."""
    if isinstance(case.body, dict) and case.path.startswith("/api/media/upload"):
        for key in ("url", "urls", "items"):
            case.body.pop(key, None)


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_a_curator(case, fuzz_headers):
    _offline(case)
    case.call_and_validate(headers=fuzz_headers["curator"], checks=CHECKS)


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_as_staff(case, fuzz_headers):
    _offline(case)
    case.call_and_validate(headers=fuzz_headers["staff"], checks=CHECKS)
