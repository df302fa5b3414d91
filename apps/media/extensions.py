"""Extension points of media's pages, API and admin, filled by higher apps in `AppConfig.ready()`.

Media knows nothing of tags or the query language (docs/architecture.md#layers), yet its item page
shows the tag editor and its library list answers `q=` queries. Both go through this registry:

* **Item panels**: callables `(request, item) -> str` that render a section of the item page
  (the tags app adds the tag editor). They render in registration order, below the metadata.
* **Selection actions**: buttons of the library's selection bar that post the selected ids
  (`ids`, space-separated) to another app's page (the datasets app adds "Add to dataset…").
* **The query provider** (one; the search app): answers `q=` on the gallery page, on
  `GET /api/media/?q=` and `/api/media/search`, and in the admin's `q:` search box.

Without a provider, `q=` is refused with a clear error rather than ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils.safestring import SafeString, mark_safe

from apps.core.exceptions import DomainError

if TYPE_CHECKING:
    from django.db.models import QuerySet
    from django.http import HttpRequest, HttpResponse
    from rest_framework.request import Request
    from rest_framework.response import Response

    from apps.media.filters import MediaItemFilter
    from apps.media.models import MediaItem

ItemPanel = Callable[["HttpRequest", "MediaItem"], str]


@dataclass(frozen=True)
class QueryProvider:
    """What answers `q=` over the library (each takes the already filtered base queryset)."""

    page: Callable[[HttpRequest, MediaItemFilter, QuerySet[MediaItem], str], HttpResponse]
    api: Callable[[Request, QuerySet[MediaItem]], Response]
    ids: Callable[..., list[int]]


@dataclass(frozen=True)
class SelectionAction:
    """A button of the library's selection bar: posts `ids` to the page named `url_name`;
    shown to users with `perm` (empty: everyone signed in)."""

    key: str
    label: str
    url_name: str
    perm: str = ""


_panels: dict[str, ItemPanel] = {}
_actions: dict[str, SelectionAction] = {}
_provider: list[QueryProvider] = []


def item_panel_register(*, key: str, panel: ItemPanel) -> None:
    """Add (or replace, by `key`) a section of the item page."""
    _panels[key] = panel


def item_panels_render(*, request: HttpRequest, item: MediaItem) -> list[SafeString]:
    """Every registered section of the item page, rendered (panels escape their own content)."""
    return [mark_safe(panel(request, item)) for panel in _panels.values()]  # noqa: S308


def selection_action_register(action: SelectionAction) -> None:
    """Add (or replace, by `key`) a button of the library's selection bar."""
    _actions[action.key] = action


def selection_actions(*, user: Any) -> list[SelectionAction]:
    """The selection bar's registered buttons this user may use, in registration order."""
    return [a for a in _actions.values() if not a.perm or user.has_perm(a.perm)]


def query_provider_register(provider: QueryProvider) -> None:
    """Install the query language (replaces an earlier provider: `ready()` may run twice in tests)."""
    _provider[:] = [provider]


def query_provider() -> QueryProvider:
    """The installed query provider; a clear error when no app provides one."""
    if not _provider:
        raise DomainError(
            "Tag queries (q=) need the search app, which is not installed.",
            code="media.search_unavailable",
        )
    return _provider[0]


def query_ids(**kwargs: Any) -> list[int]:
    """Ids of items matching a query (the admin's `q:` box): `q`, `viewer`, `base`, `max_ids`."""
    return query_provider().ids(**kwargs)
