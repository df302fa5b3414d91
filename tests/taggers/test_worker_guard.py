"""§10 check 34: an ML worker without HF_HUB_OFFLINE=1 refuses to start, and only the
provisioning module may import huggingface_hub's download functions."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

APPS = Path(__file__).resolve().parents[2] / "apps"
DOWNLOADS = {"snapshot_download", "hf_hub_download", "try_to_load_from_cache", "HfApi"}
PROVISIONING = APPS / "taggers" / "engine" / "provision.py"


def _worker(queues: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "REDIS_URL")}
    command = [sys.executable, "-m", "celery", "-A", "baggintag", "worker", "-Q", queues, "--pool", "solo"]
    return subprocess.run(
        command,
        env={**base, "DJANGO_SETTINGS_MODULE": "baggintag.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_ml_worker_without_hf_offline_exits_with_a_message() -> None:
    done = _worker("default,ml_cpu")
    assert done.returncode != 0
    assert "HF_HUB_OFFLINE is not 1" in done.stderr
    assert "ml_cpu" in done.stderr


def test_only_the_provisioning_module_imports_hf_download_functions() -> None:
    found = []
    for path in sorted(APPS.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: set[str] = set()
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("huggingface_hub"):
                names = {alias.name for alias in node.names} & DOWNLOADS or {"*"}
            elif isinstance(node, ast.Import):
                names = {a.name for a in node.names if a.name.startswith("huggingface_hub")}
            if names and path != PROVISIONING:
                found.append(f"{path.relative_to(APPS)}:{node.lineno}")
    assert found == []
