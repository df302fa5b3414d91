"""The stored explicit member count of datasets and subsets (docs/datasets.md#membership),
computed set-based: one UPDATE … SET = (SELECT COUNT(*) …) per table."""

from django.db import migrations, models
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce


def _counts(apps, schema_editor):
    for owner_name, row_name, key in (("Dataset", "DatasetItem", "dataset"), ("Subset", "SubsetItem", "subset")):
        owner = apps.get_model("datasets", owner_name)
        rows = apps.get_model("datasets", row_name)
        count = (
            rows.objects.filter(**{key: OuterRef("pk")}, excluded=False)
            .order_by()
            .values(key)
            .annotate(n=Count("pk"))
            .values("n")
        )
        owner.objects.update(
            explicit_count=Coalesce(Subquery(count, output_field=IntegerField()), Value(0))
        )


def _field() -> models.PositiveIntegerField:
    return models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text="Explicit, non-excluded member rows (kept by members_edit); the search planner's estimate",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0002_snapshots_and_groups"),
    ]

    operations = [
        migrations.AddField(model_name="dataset", name="explicit_count", field=_field()),
        migrations.AddField(model_name="subset", name="explicit_count", field=_field()),
        migrations.RunPython(_counts, migrations.RunPython.noop),
    ]
