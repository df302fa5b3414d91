"""The test suite's own habits (docs/architecture.md, Tests): builders live in each app's
factories, and no test module imports another (a helper shared by two modules moves to the app's
factories.py, snapshots.py or a conftest fixture)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text()) for path in sorted(TESTS.rglob("*.py"))}


def _imported(tree: ast.Module) -> set[str]:
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_no_test_module_imports_another() -> None:
    offenders = {
        f"{path.relative_to(TESTS)} imports {name}"
        for path, tree in _modules().items()
        for name in _imported(tree)
        if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")
    }
    assert sorted(offenders) == []


def test_items_are_built_by_the_one_make_item() -> None:
    """Only tests/media/factories.py builds items through ingest; the ingest tests call the
    service they test (and keep their own wrapper, which returns the whole IngestResult)."""
    allowed = {TESTS / "media" / "factories.py", TESTS / "media" / "test_ingest.py"}
    builders = {
        f"{path.relative_to(TESTS)}:{node.lineno} {node.name}"
        for path, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and node.name in ("make_item", "item_with", "add_image", "ingest")
        and path not in allowed
    }
    callers = {
        str(path.relative_to(TESTS))
        for path, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "media_ingest"
        and path not in allowed
    }
    assert sorted(builders) == []
    assert sorted(callers) == []
