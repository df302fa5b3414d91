"""Shipped base-model profiles (docs/training.md#base-models); sessions refer to them by slug.

Seeded rows are marked `seeded`: they cannot be deleted and their shape (family, sizes, text
style) cannot change; where the weights live (source, diffusers_ref) stays editable.
"""

from django.db import migrations

from apps.training.defaults import PROFILES


def seed(apps, schema_editor):
    Profile = apps.get_model("training", "BaseModelProfile")
    for values in PROFILES:
        values = dict(values)
        slug = values.pop("slug")
        Profile.objects.get_or_create(slug=slug, defaults={**values, "seeded": True})


def unseed(apps, schema_editor):
    Profile = apps.get_model("training", "BaseModelProfile")
    Profile.objects.filter(slug__in=[p["slug"] for p in PROFILES], seeded=True).delete()


class Migration(migrations.Migration):
    dependencies = [("training", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
