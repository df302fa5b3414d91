"""Model provisioning: copy weights into BAGGINTAG_MODEL_DIR with a MANIFEST.json of sha256 per
file, and verify them later (docs/taggers.md#provisioning).

The only module that may import huggingface_hub's download functions (a static test holds it):
workers never provision, and run with HF_HUB_OFFLINE=1.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apps.taggers.engine.base import InvalidModelRef, ModelIntegrityError, ModelNotProvisioned

MANIFEST = "MANIFEST.json"
# kind → files a provisioned directory must hold (captioners: whatever the HF repo holds).
REQUIRED: dict[str, tuple[str, ...]] = {
    "open_clip": ("open_clip_config.json", "open_clip_model.safetensors"),
    "wd": ("model.onnx", "selected_tags.csv"),
    "detector": ("model.onnx", "labels.json"),
    "captioner": (),
}
KINDS = tuple(REQUIRED)


@dataclass
class Provisioned:
    kind: str
    name: str
    directory: Path
    files: dict[str, str] = field(default_factory=dict)


@dataclass
class Verified:
    directory: str
    ok: bool
    problems: list[str] = field(default_factory=list)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_name(kind: str, name: str) -> None:
    if kind not in REQUIRED:
        raise InvalidModelRef(f"Unknown model kind {kind!r}; one of: {', '.join(KINDS)}.")
    if not name or "/" in name or "\\" in name or name.startswith(".") or name != name.strip():
        raise InvalidModelRef(f"{name!r} is not a directory name (no '/', no leading '.').")


def _files_of(directory: Path) -> list[Path]:
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST and ".cache" not in p.parts
    )


def _download(repo: str, revision: str) -> Path:
    """A snapshot of an HF repo at a pinned revision (connected hosts only)."""
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise ModelNotProvisioned(
            f"HF_HUB_OFFLINE=1: cannot download {repo!r} here. Provision on a connected host, or mirror "
            f"the repository and pass --from-dir <mirror>."
        )
    if not revision:
        raise InvalidModelRef("Downloads need --revision (a commit hash) so the files are pinned.")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=repo, revision=revision))


def provision(
    *,
    model_root: Path,
    kind: str,
    repo: str,
    name: str,
    revision: str = "",
    from_dir: Path | None = None,
    licence: str = "",
    extras: dict[str, Any] | None = None,
    replace: bool = False,
) -> Provisioned:
    """Copy a model into `<model_root>/<kind>/<name>/` (temp folder, then an atomic rename) with
    its MANIFEST.json. Raises ModelNotProvisioned naming the source directory and missing files."""
    _check_name(kind, name)
    source = from_dir if from_dir is not None else _download(repo, revision)
    if not source.is_dir():
        raise ModelNotProvisioned(
            f"The mirror directory {source} does not exist.", details={"directory": str(source)}
        )
    missing = [f for f in REQUIRED[kind] if not (source / f).is_file()]
    if missing:
        raise ModelNotProvisioned(
            f"{source} is missing {', '.join(missing)} (a {kind} model needs {', '.join(REQUIRED[kind])}).",
            details={"directory": str(source), "missing": missing},
        )
    target = model_root / kind / name
    if target.exists() and not replace:
        raise InvalidModelRef(f"{target} exists already; pass --replace to provision it again.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        files: dict[str, str] = {}
        for path in _files_of(source):
            relative = path.relative_to(source).as_posix()
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staging / relative)
            files[relative] = sha256_of(staging / relative)
        manifest = {
            "kind": kind,
            "name": name,
            "source": repo,
            "revision": revision,
            "licence": licence,
            "files": files,
            **({"extras": extras} if extras else {}),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Provisioned(kind, name, target, files)


def manifest_read(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


def manifest_sha256(directory: Path, relative: str) -> str | None:
    """The sha256 a directory's manifest records for one file, if any."""
    manifest = manifest_read(directory)
    value = manifest["files"].get(relative) if manifest else None
    return value if isinstance(value, str) else None


def verify_directory(directory: Path) -> Verified:
    """Hash every file the manifest lists (missing or different files are problems)."""
    manifest = manifest_read(directory)
    shown = str(directory)
    if manifest is None:
        return Verified(shown, False, [f"{MANIFEST} is missing or unreadable"])
    problems = []
    for relative, expected in sorted(manifest["files"].items()):
        path = directory / relative
        if not path.is_file():
            problems.append(f"{relative}: missing")
        elif sha256_of(path) != expected:
            problems.append(f"{relative}: sha256 differs from the manifest")
    return Verified(shown, not problems, problems)


def verify_all(model_root: Path, *, kind: str | None = None, name: str | None = None) -> list[Verified]:
    """Every provisioned directory (`<kind>/<name>/` with a manifest) under the model root."""
    found = []
    for kind_dir in sorted(p for p in model_root.iterdir() if p.is_dir()) if model_root.is_dir() else []:
        if kind_dir.name not in REQUIRED or (kind and kind_dir.name != kind):
            continue
        for directory in sorted(p for p in kind_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if name and directory.name != name:
                continue
            found.append(verify_directory(directory))
    return found


def require_intact(directory: Path, relative_files: list[str]) -> None:
    """Raise ModelIntegrityError if a listed file differs from the directory's manifest."""
    for relative in relative_files:
        expected = manifest_sha256(directory, relative)
        if expected is not None and sha256_of(directory / relative) != expected:
            raise ModelIntegrityError(
                f"{directory / relative} does not match its sha256 in {MANIFEST}; provision it again.",
                details={"file": relative},
            )
