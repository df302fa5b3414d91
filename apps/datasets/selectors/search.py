"""`dataset:<slug>` and `subset:<dataset>/<subset>` in the query language
(docs/query-language.md#datasets-and-subsets), registered with the search app from
DatasetsConfig.ready() through apps/search/extensions.py.

A value stands for its explicit rows (which the planner may drive by, like a tag's postings),
the saved query resolved in place, and NOT EXISTS on the excluded rows when there are any.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from django.db.models import QuerySet

from apps.datasets.models import Dataset, DatasetItem, Subset, SubsetItem
from apps.search.extensions import QualifierAnswer, QualifierExtension, QualifierUnknown

COUNT_CAP = 200_000  # the planner needs "about how many", not more (SEARCH_SCAN_BUDGET)
SUGGESTIONS = 5


def _rows(key: Hashable) -> QuerySet[Any]:
    assert isinstance(key, tuple)
    kind, pk = key
    if kind in ("dataset", "dataset-excluded"):
        return DatasetItem.objects.filter(dataset_id=pk, excluded=kind == "dataset-excluded")
    return SubsetItem.objects.filter(subset_id=pk, excluded=kind == "subset-excluded")


def _answer(kind: str, pk: int, query: str, count: int) -> QualifierAnswer:
    """`count`: the stored explicit_count (kept by members_edit), so resolving costs no scan."""
    excluded = (f"{kind}-excluded", pk)
    return QualifierAnswer(
        key=(kind, pk),
        count=min(count, COUNT_CAP),
        query=query,
        excluded_key=excluded if _rows(excluded).exists() else None,
    )


def _known(slug: str) -> str:
    near = Dataset.objects.filter(slug__startswith=slug[:3]).order_by("slug").values_list("slug", flat=True)
    names = list(near[:SUGGESTIONS]) or list(
        Dataset.objects.order_by("-id").values_list("slug", flat=True)[:SUGGESTIONS]
    )
    return "Write a dataset's slug" + (
        f", e.g. {', '.join(names)}." if names else " (there are no datasets yet)."
    )


def dataset_resolve(value: str) -> QualifierAnswer:
    dataset = Dataset.objects.filter(slug=value.lower()).only("pk", "query", "explicit_count").first()
    if dataset is None:
        raise QualifierUnknown(f"there is no dataset {value!r}.", hint=_known(value.lower()))
    return _answer("dataset", dataset.pk, dataset.query, dataset.explicit_count)


def subset_resolve(value: str) -> QualifierAnswer:
    dataset_slug, slash, subset_slug = value.lower().partition("/")
    hint = "subset:<dataset slug>/<subset slug>, e.g. subset:faces/close-ups"
    if not slash or not dataset_slug or not subset_slug:
        raise QualifierUnknown(f"{value!r} is not <dataset>/<subset>.", hint=hint)
    dataset = Dataset.objects.filter(slug=dataset_slug).only("pk").first()
    if dataset is None:
        raise QualifierUnknown(f"there is no dataset {dataset_slug!r}.", hint=_known(dataset_slug))
    subset = (
        Subset.objects.filter(dataset=dataset, slug=subset_slug).only("pk", "query", "explicit_count").first()
    )
    if subset is None:
        slugs = list(
            Subset.objects.filter(dataset=dataset).order_by("slug").values_list("slug", flat=True)[:10]
        )
        known = f"Its subsets: {', '.join(slugs)}." if slugs else "It has no subsets."
        raise QualifierUnknown(f"dataset {dataset_slug!r} has no subset {subset_slug!r}.", hint=known)
    return _answer("subset", subset.pk, subset.query, subset.explicit_count)


DATASET = QualifierExtension(
    name="dataset", help="a dataset's slug, e.g. dataset:faces", resolve=dataset_resolve, rows=_rows
)
SUBSET = QualifierExtension(
    name="subset",
    help="a dataset's slug and a subset's slug, e.g. subset:faces/close-ups",
    resolve=subset_resolve,
    rows=_rows,
)
