"""Settings: every knob documented and declared once, production strict, entry points on prod."""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import environ
import pytest
from django.conf import settings

from apps.core.conf import env_name

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_DIR = ROOT / "baggintag" / "settings"
ENV_EXAMPLE = ROOT / ".env.example"
# `NAME=value`, or `# NAME=value` for a variable whose default is computed.
_EXAMPLE_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def _example() -> dict[str, tuple[bool, str]]:
    """.env.example as {name: (commented out, value)}."""
    found = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if m := _EXAMPLE_LINE.match(line.strip()):
            found[m[2]] = (bool(m[1]), m[3])
    return found


def _env_reads(pattern: str = "*.py") -> dict[str, tuple[str | None, str, Any]]:
    """Every `[SETTING =] env.<kind>("NAME", default=...)` in baggintag/settings/<pattern>, as
    {NAME: (setting or None, kind, default)}; a default that is not a constant is `...`."""
    reads: dict[str, tuple[str | None, str, Any]] = {}
    for path in sorted(SETTINGS_DIR.glob(pattern)):
        tree = ast.parse(path.read_text())
        targets: dict[int, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                targets[id(node.value)] = node.targets[0].id
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name | ast.Call)
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and node.func.attr in {"str", "int", "float", "bool", "list", "db"}
            ):
                continue
            default: Any = ...
            for kw in node.keywords:
                if kw.arg == "default":
                    code = compile(ast.Expression(kw.value), path.name, "eval")
                    try:  # constants and arithmetic on them (512 * 1024 * 1024)
                        default = eval(code, {"__builtins__": {}})
                    except NameError:
                        default = ...
            reads[node.args[0].value] = (targets.get(id(node)), node.func.attr, default)
    return reads


def _conf_modules() -> list[Any]:
    """The per-app settings modules: apps/**/conf.py and apps/**/config.py with DEFAULTS."""
    modules = []
    for path in sorted((ROOT / "apps").rglob("conf*.py")):
        if path.stem not in {"conf", "config"} or "migrations" in path.parts:
            continue
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if hasattr(module, "DEFAULTS"):
            modules.append(module)
    return modules


def _conf_settings() -> dict[str, Any]:
    names: dict[str, Any] = {}
    for module in _conf_modules():
        names.update(module.DEFAULTS)
    return names


def test_conf_modules_cover_media_jobs_tags_and_search():
    names = {module.__name__.rsplit(".", 1)[0] for module in _conf_modules()}
    assert {"apps.media", "apps.jobs", "apps.tags"} <= names
    assert "SEARCH_TIME_LIMIT" in _conf_settings()


def test_every_setting_the_conf_modules_read_is_documented_in_env_example():
    example = _example()
    missing = [f"{name} ({env_name(name)})" for name in _conf_settings() if env_name(name) not in example]
    assert not missing, f"add to .env.example: {missing}"


def test_every_variable_the_settings_read_is_documented_in_env_example():
    example = _example()
    missing = sorted(name for name in _env_reads() if name not in example)
    assert not missing, f"add to .env.example: {missing}"


def test_every_conf_setting_is_declared_in_base_from_its_variable_with_the_same_default():
    reads = _env_reads("base.py")
    for name, default in _conf_settings().items():
        variable = env_name(name)
        assert variable in reads, f"base.py does not read {variable}"
        setting, _kind, base_default = reads[variable]
        assert setting == name, f"{variable} feeds {setting}, not {name}"
        assert base_default == default, f"{name}: base.py says {base_default!r}, the conf module {default!r}"


def test_env_example_values_are_the_defaults():
    """Copying .env.example to .env changes nothing."""
    reads, base = _env_reads(), _env_reads("base.py")
    for name, (commented, value) in _example().items():
        assert name in reads, f".env.example lists {name}, which no setting reads"
        if commented or name not in base or base[name][2] is ...:
            continue
        _setting, kind, default = base[name]
        parser = environ.Env()
        parser.ENVIRON = {name: value}
        parsed = getattr(parser, kind)(name, default=default)
        if kind == "str" and name == "DJANGO_SECRET_KEY":
            assert parsed == "", "leave DJANGO_SECRET_KEY empty in .env.example"
            continue
        assert parsed == default, f"{name}={value} in .env.example, but the default is {default!r}"


def test_apps_read_settings_only_through_conf_modules():
    reads = re.compile(r"getattr\(settings\b|\bsettings\.(?!AUTH_USER_MODEL\b)[A-Z][A-Z0-9_]*")
    offenders = []
    for path in sorted((ROOT / "apps").rglob("*.py")):
        if path.stem in {"conf", "config"} or "migrations" in path.parts:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if reads.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "read settings through the app's conf module:\n" + "\n".join(offenders)


def test_conf_accessors_follow_override_settings(settings):
    from apps.jobs import conf as jobs_conf
    from apps.media import conf as media_conf
    from apps.tags import conf as tags_conf

    settings.BAGGINTAG_MAX_UPLOAD_BYTES = 7
    settings.BAGGINTAG_URL_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    settings.BAGGINTAG_JOB_STALE_SECONDS = 11
    settings.BULK_CHUNK_ITEMS = 3
    assert media_conf.max_upload_bytes() == 7
    assert media_conf.url_allowed_networks() == ["10.0.0.0/8"]
    assert jobs_conf.job_stale_seconds() == 11
    assert tags_conf.bulk_chunk_items() == 3
    del settings.BULK_CHUNK_ITEMS
    assert tags_conf.bulk_chunk_items() == tags_conf.DEFAULTS["BULK_CHUNK_ITEMS"]


def test_tests_run_on_the_test_settings():
    assert os.environ["DJANGO_SETTINGS_MODULE"] == "baggintag.settings.test"
    assert not settings.DEBUG


# --- production settings and entry points, in a fresh interpreter with a clean environment


def _dotenv_sets(*names: str) -> bool:
    dotenv = ROOT / ".env"
    if not dotenv.exists():
        return False
    text = dotenv.read_text()
    return any(re.search(rf"^\s*{name}\s*=\s*\S", text, re.MULTILINE) for name in names)


@pytest.fixture
def run_python(tmp_path):
    if _dotenv_sets("DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DJANGO_SETTINGS_MODULE"):
        pytest.skip("this checkout's .env sets DJANGO_SECRET_KEY, DJANGO_DEBUG or DJANGO_SETTINGS_MODULE")

    def run(code: str, **extra: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path)}
        env["BAGGINTAG_DATA_DIR"] = str(tmp_path / "data")
        env.update(extra)
        return subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )

    return run


_SHOW = "from django.conf import settings; print(settings.SETTINGS_MODULE, settings.DEBUG)"
_PROD = "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'baggintag.settings.prod'"


def test_production_settings_refuse_to_start_without_a_secret_key(run_python, tmp_path):
    result = run_python(f"{_PROD}; django.setup()")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert not (tmp_path / "data").exists(), "refused before creating the data folder"


def test_production_settings_have_debug_off_unless_asked(run_python):
    code = f"{_PROD}; django.setup(); {_SHOW}"
    result = run_python(code, DJANGO_SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["baggintag.settings.prod", "False"]
    result = run_python(code, DJANGO_SECRET_KEY="k" * 50, DJANGO_DEBUG="true")
    assert result.stdout.split() == ["baggintag.settings.prod", "True"]


@pytest.mark.parametrize("module", ["baggintag.wsgi", "baggintag.asgi"])
def test_web_entry_points_default_to_production_settings(run_python, module):
    result = run_python(f"import {module}; {_SHOW}", DJANGO_SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["baggintag.settings.prod", "False"]


def test_celery_app_defaults_to_production_settings(run_python):
    code = f"from baggintag.celery import app; app.loader.import_default_modules(); {_SHOW}"
    result = run_python(code, DJANGO_SECRET_KEY="k" * 50)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["baggintag.settings.prod", "False"]
    assert run_python(code).returncode != 0, "no key, no worker"


def test_manage_py_defaults_to_development_settings(run_python):
    argv = ["manage.py", "shell", "-v", "0", "-c", _SHOW]
    result = run_python(
        f"import runpy, sys; sys.argv = {argv!r}; runpy.run_path('manage.py', run_name='__main__')"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["baggintag.settings.dev", "True"]
