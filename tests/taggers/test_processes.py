"""§10 check 1: web processes never load the ML stack (docs/taggers.md#processes)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ML = ("torch", "open_clip", "onnxruntime", "sklearn", "torchvision")

PROBE = """
import sys, django
django.setup()
import baggintag.urls, baggintag.api_urls  # every view, serializer and admin of the web process
from django.contrib import admin
admin.autodiscover()
print(",".join(sorted(m for m in {ml} if m in sys.modules)))
"""


@pytest.mark.parametrize("settings_module", ["baggintag.settings.test", "baggintag.settings.dev"])
def test_the_web_process_imports_no_ml_package(settings_module: str) -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(ml=ML)], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
