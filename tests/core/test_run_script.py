"""scripts/run.sh and the bootstrap command: what a first-time user is told (README "Quick start")."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


def bootstrap() -> str:
    out = StringIO()
    call_command("bootstrap", stdout=out)
    return out.getvalue()


def hinted_python(text: str) -> Path:
    match = re.search(r"([^\s`]+) manage\.py changepassword", text)
    assert match, text
    return Path(match[1])


@pytest.mark.django_db
def test_first_run_names_the_interpreter_to_change_the_password():
    text = bootstrap()
    assert hinted_python(text).absolute() == Path(sys.executable).absolute()


@pytest.mark.django_db
def test_later_runs_say_how_to_reset_the_admin_password():
    User.objects.create_superuser("boss", password="x-secret-1")
    text = bootstrap()
    assert "manage.py changepassword boss" in text


@pytest.mark.django_db
def test_later_runs_name_an_interpreter_that_exists():
    User.objects.create_superuser("boss", password="x-secret-1")
    assert hinted_python(bootstrap()).absolute() == Path(sys.executable).absolute()


def test_run_script_without_python3_venv_says_how_to_get_it(tmp_path: Path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run.sh", tmp_path / "scripts" / "run.sh")
    fake = tmp_path / "python3"
    # A Python without ensurepip, as Debian's python3 is without the python3-venv package.
    fake.write_text(
        '#!/bin/sh\ncase "$*" in *ensurepip*) exit 1;; *version_info*) echo 3.11;; esac\nexit 0\n'
    )
    fake.chmod(0o755)
    done = subprocess.run(
        ["bash", str(tmp_path / "scripts" / "run.sh")],
        env={"PATH": "/usr/bin:/bin", "PYTHON": str(fake)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "sudo apt install python3-venv" in done.stderr
    assert not (tmp_path / ".venv").exists()
