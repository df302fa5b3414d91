"""Run the real upstream checks on an export bundle (docs/export-upstream.md).

    python scripts/check_bundle_upstream.py BUNDLE --sd-scripts PATH --onetrainer PATH [--mgds PATH]

PATH are checkouts of kohya-ss/sd-scripts, Nerogar/OneTrainer (and Nerogar/mgds) at the commits
the export pins; their modules are imported from there, so run this with a Python that has their
dependencies (docs/export-upstream.md#environment), never the project's own .venv. Checks:

* kohya `kohya/dataset.toml`: `ConfigSanitizer` with the target script's flags, then
  `BlueprintGenerator.generate` with an argparse namespace made by that script's own parser from
  `--dataset_config` and `--config_file kohya/args.toml`, as the script's `__main__` does;
  `ti/*/kohya_dataset.toml` likewise with a textual-inversion script (no caption dropout).
* kohya `kohya/args.toml`: every key is an option of the script's parser, none repeated.
* kohya DreamBooth loader (acceptance check A02): with the configs moved to where the bundle lies
  (the bundle's own `scripts/relocate.py` rewrite), `generate_dataset_group_by_blueprint` builds
  kohya's `DreamBoothDataset`s, which list and caption the images; each subset must hold exactly
  the images `items.jsonl` lists in its folder, each with a non-empty caption, and upstream must
  log no warning (one exception: see `NO_REG_WARNING`). Skipped, with a message, when the
  bundle has no `items.jsonl` or the checkout lacks what the check builds on.
* OneTrainer `concepts.json` files: each concept survives `ConceptConfig.default_values()
  .from_dict(c).to_dict()` unchanged (same JSON text: keys, order, types) with no "Could not set".
* OneTrainer `config.json` / `samples.json` files: every written key comes back from TrainConfig /
  SampleConfig with the same value, with no "Could not set".

Prints PASS, FAIL or SKIP per check and exits 1 when any check fails (2 when there is nothing to
check); a SKIP does not fail the run.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import importlib.util
import io
import json
import logging
import re
import sys
import tempfile
import tomllib
import traceback
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

# The project's own record of the upstream schemas (pure Python, no Django): the checks below use
# its per-script flags and compare it with the checkouts, so a moved pin shows up as a failure.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from apps.training import upstream

# Longest names first, so `sdxl_train_network.py` is not read as `train_network.py`.
KOHYA_SCRIPTS = sorted(upstream.KOHYA_ARGS, key=len, reverse=True)
# ConfigSanitizer(dreambooth, finetuning, controlnet = --masked_loss, dropout) per script.
SANITIZER_FLAGS = upstream.KOHYA_SANITIZER_FLAGS


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class Report:
    def __init__(self, roots: list[Path]) -> None:
        self.roots = [str(root.resolve()) for root in roots]
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def run(self, name: str, check: Callable[[], str | None]) -> None:
        """`check` returns a detail for PASS or raises; CheckSkipped is a SKIP, any other
        exception a FAIL."""
        try:
            detail = check()
        except CheckSkipped as exc:
            self.skip(name, str(exc))
            return
        except Exception as exc:  # upstream raises many kinds; each one is a failure
            self.failed += 1
            say(f"FAIL  {name}")
            # voluptuous' MultipleInvalid holds every schema error; its str() shows only the first.
            for error in getattr(exc, "errors", None) or [exc]:
                label = f"{type(error).__name__}: "
                text = str(error).strip() or "(no message)"
                say("      " + label + text.replace("\n", "\n      " + " " * len(label)))
            if not isinstance(exc, CheckFailed) and not hasattr(exc, "errors"):
                frames = traceback.extract_tb(exc.__traceback__)
                inside = [f for f in frames if any(f.filename.startswith(r) for r in self.roots)]
                frame = (inside or frames)[-1]
                say(f"      (raised in {frame.filename}:{frame.lineno})")
            return
        self.passed += 1
        say(f"PASS  {name}" + (f"\n      {detail}" if detail else ""))

    def skip(self, name: str, reason: str) -> None:
        """A check that cannot run here: neither passed nor failed."""
        self.skipped += 1
        say(f"SKIP  {name}\n      {reason}")


class CheckFailed(Exception):
    pass


class CheckSkipped(Exception):
    """Raised by a check that cannot run with this bundle or checkout; Report.run turns it into
    a SKIP line."""


def detect_script(launch: Path, default: str) -> str:
    """The kohya script a launch script runs (first known name in it), else `default`."""
    if launch.is_file():
        text = launch.read_text(encoding="utf-8", errors="replace")
        for name in KOHYA_SCRIPTS:
            if re.search(rf"(?<![\w]){re.escape(name)}", text):
                return name
    return default


def flatten_args(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    flat: dict[str, Any] = {}
    for key, value in tomllib.loads(path.read_text(encoding="utf-8")).items():
        flat.update(value if isinstance(value, dict) else {key: value})
    return flat


@contextlib.contextmanager
def argv(values: list[str]) -> Iterator[None]:
    saved = sys.argv
    sys.argv = values
    try:
        yield
    finally:
        sys.argv = saved


def kohya_namespace(script: str, dataset_toml: Path, args_toml: Path | None) -> argparse.Namespace:
    """The namespace the script would hand to its blueprint generator for `--dataset_config
    dataset_toml [--config_file args_toml]`: its own parser, sd-scripts' config-file merge, then
    the argument checks and conversions its train() runs first."""
    module = importlib.import_module(Path(script).stem)
    train_util = importlib.import_module("library.train_util")
    parser = module.setup_parser()
    command = [script, "--dataset_config", str(dataset_toml)]
    if args_toml is not None and args_toml.is_file():
        command += ["--config_file", str(args_toml)]
    with argv(command):
        namespace = parser.parse_args(command[1:])
        train_util.verify_command_line_training_args(namespace)
        namespace = train_util.read_config_from_file(namespace, parser)
    # What the script's train() does to its arguments before it builds the dataset blueprint.
    train_util.verify_training_args(namespace)
    train_util.prepare_dataset_args(namespace, SANITIZER_FLAGS[script][1])
    return namespace


def kohya_blueprint(script: str, dataset_toml: Path, args_toml: Path | None) -> tuple[Any, tuple[bool, ...]]:
    """The blueprint the script makes of `dataset_toml` (and `args_toml`), and its sanitizer flags."""
    config_util = importlib.import_module("library.config_util")
    namespace = kohya_namespace(script, dataset_toml, args_toml)
    dreambooth, finetuning, dropout = SANITIZER_FLAGS[script]
    flags = (dreambooth, finetuning, bool(getattr(namespace, "masked_loss", False)), dropout)
    sanitizer = config_util.ConfigSanitizer(*flags)
    user_config = config_util.load_user_config(str(dataset_toml))
    sanitizer.sanitize_user_config(user_config)
    return config_util.BlueprintGenerator(sanitizer).generate(user_config, namespace), flags


def check_kohya_dataset(script: str, dataset_toml: Path, args_toml: Path | None) -> str:
    blueprint, flags = kohya_blueprint(script, dataset_toml, args_toml)
    datasets = blueprint.dataset_group.datasets
    subsets = sum(len(d.subsets) for d in datasets)
    return f"ConfigSanitizer{flags} + BlueprintGenerator: {len(datasets)} dataset(s), {subsets} subset(s)"


def check_kohya_args(script: str, args_toml: Path) -> str:
    module = importlib.import_module(Path(script).stem)
    dests = {action.dest for action in module.setup_parser()._actions}
    seen: dict[str, str] = {}
    problems = []
    for section, value in tomllib.loads(args_toml.read_text(encoding="utf-8")).items():
        items = value.items() if isinstance(value, dict) else [(section, value)]
        for key, _ in items:
            if key not in dests:
                problems.append(f"[{section}] {key}: not an option of {script}")
            if key in seen:
                problems.append(f"[{section}] {key}: repeats [{seen[key]}] (the last one wins)")
            seen.setdefault(key, section)
    if problems:
        raise CheckFailed("\n".join(problems))
    return f"{len(seen)} key(s), all options of {script}"


# Upstream warnings A02 accepts. DreamBoothDataset logs "no regularization images" for every
# dataset with no `is_reg` image, which is what a session without a regularization set means to
# write (docs/export-upstream.md#a02-kohyas-dreambooth-loader). Accepted only when the blueprint
# holds a dataset without an `is_reg` subset.
NO_REG_WARNING = "no regularization images"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def upstream_warnings() -> Iterator[list[str]]:
    """Collects, as "where: message" lines, every record of WARNING or above that reaches the
    root logger (sd-scripts logs through `logging`) and every `warnings.warn`. The list fills when
    the block ends."""
    found: list[str] = []
    handler = _Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield found
    finally:
        root.removeHandler(handler)
    found += [f"{r.name} {r.levelname}: {r.getMessage()}" for r in handler.records]
    found += [f"{Path(w.filename).name}:{w.lineno} {w.category.__name__}: {w.message}" for w in caught]


def relocated_configs(bundle: Path, files: list[Path], into: Path) -> list[Path]:
    """Copies (under `into`) of the bundle's config `files` with the exported root moved to where
    the bundle lies, made by the bundle's own `scripts/relocate.py` (`rewrite`, `toml_text`), as
    `kohya/train.sh` does before training. The bundle itself is not changed."""
    session, script = bundle / "session.json", bundle / "scripts" / "relocate.py"
    if not (session.is_file() and script.is_file()):
        raise CheckSkipped("no session.json or scripts/relocate.py: the exported root is unknown")
    spec = importlib.util.spec_from_file_location("bundle_relocate", script)
    if spec is None or spec.loader is None:
        raise CheckSkipped(f"cannot load {script}")
    relocate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(relocate)
    old = json.loads(session.read_text(encoding="utf-8"))["export"]["target_root"]
    new = relocate.normalise_root(str(bundle.resolve()))
    moved = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        data = relocate.rewrite(tomllib.loads(text), old, new)
        target = into / path.relative_to(bundle)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(relocate.toml_text(data, relocate.toml_header(text)), encoding="utf-8")
        moved.append(target)
    return moved


def listed_images(items: list[dict[str, Any]], folder: str) -> set[str]:
    """The bundle-relative image paths items.jsonl puts in `folder`. A TI `captioned/` folder
    holds one R×R `<id>.png` per training item (any `data/` partition), so it is derived."""
    if re.fullmatch(r"ti/[^/]+/captioned", folder):
        return {f"{folder}/{item['id']}.png" for item in items if item["file"].startswith("data/")}
    return {item["file"] for item in items if item["file"].rpartition("/")[0] == folder}


def loaded_images(train_util: Any, groups: list[Any], root: Path) -> dict[str, dict[str, str]]:
    """image_dir → {bundle-relative image path: caption} of every image kohya's datasets hold."""
    found: dict[str, dict[str, str]] = {}
    for group in groups:
        for dataset in group.datasets:
            # A ControlNet-style block (--masked_loss) keeps its images in a DreamBooth delegate.
            dataset = getattr(dataset, "dreambooth_dataset_delegate", dataset)
            if not isinstance(dataset, train_util.DreamBoothDataset):
                raise CheckFailed(f"{type(dataset).__name__}: not a DreamBooth-style dataset")
            if not all(hasattr(dataset, name) for name in ("image_data", "image_to_subset")):
                raise CheckSkipped("DreamBoothDataset has no image_data / image_to_subset; A02 not run")
            for key, info in dataset.image_data.items():
                folder = found.setdefault(dataset.image_to_subset[key].image_dir, {})
                folder[Path(info.absolute_path).relative_to(root).as_posix()] = info.caption
    return found


def folder_problems(
    subsets: list[Any], items: list[dict[str, Any]], found: dict[str, dict[str, str]], root: Path
) -> tuple[list[str], list[str], int]:
    """Per subset: images listed but not loaded, loaded but not listed, and empty captions. Also
    returns the subsets' bundle-relative folders and the number of images loaded."""
    problems, folders, total = [], [], 0
    for params in subsets:
        try:
            folder = Path(params.image_dir).relative_to(root).as_posix()
        except ValueError:
            problems.append(f"{params.image_dir}: not inside the bundle after relocation")
            continue
        folders.append(folder)
        want, have = listed_images(items, folder), found.get(params.image_dir, {})
        total += len(have)
        for label, paths in (
            ("listed in items.jsonl, not loaded", sorted(want - set(have))),
            ("loaded, not listed in items.jsonl", sorted(set(have) - want)),
            ("empty caption", sorted(p for p, caption in have.items() if not (caption or "").strip())),
        ):
            if paths:
                shown = ", ".join(paths[:3]) + (" …" if len(paths) > 3 else "")
                problems.append(f"{folder}: {label}: {len(paths)} ({shown})")
    return problems, folders, total


def check_kohya_loader(script: str, bundle: Path, dataset_toml: Path, args_toml: Path | None) -> str:
    """A02: kohya's DreamBooth loader finds exactly each partition's images, each with a
    non-empty caption, without warnings."""
    items_path = bundle / "items.jsonl"
    if not items_path.is_file():
        raise CheckSkipped("no items.jsonl: nothing says which images each folder holds")
    config_util = importlib.import_module("library.config_util")
    train_util = importlib.import_module("library.train_util")
    needed = [(config_util, "generate_dataset_group_by_blueprint"), (train_util, "DreamBoothDataset")]
    lacking = [name for owner, name in needed if not hasattr(owner, name)]
    if lacking:
        raise CheckSkipped(f"the sd-scripts checkout has no {', '.join(lacking)}; A02 not run")
    lines = items_path.read_text(encoding="utf-8").splitlines()
    items = [json.loads(line) for line in lines if line.strip()]
    root = bundle.resolve()
    with tempfile.TemporaryDirectory(prefix="a02-") as temp:
        configs = [dataset_toml, *([args_toml] if args_toml is not None and args_toml.is_file() else [])]
        moved = relocated_configs(bundle, configs, Path(temp))
        with upstream_warnings() as logged:
            blueprint, _ = kohya_blueprint(script, moved[0], moved[1] if len(moved) > 1 else None)
            train, val = config_util.generate_dataset_group_by_blueprint(blueprint.dataset_group)
        found = loaded_images(train_util, [train, *([val] if val else [])], root)
    subsets = [s.params for d in blueprint.dataset_group.datasets for s in d.subsets]
    problems, folders, total = folder_problems(subsets, items, found, root)
    if dataset_toml.parent.name == "kohya":  # the main dataset: every partition folder is a subset
        unread = sorted({item["file"].rpartition("/")[0] for item in items} - set(folders))
        problems += [f"{folder}: a partition of items.jsonl that no subset reads" for folder in unread]
    # A ControlNet-style subset (a masked block) has no is_reg: such a block holds no reg images.
    without_reg = any(
        not any(getattr(s.params, "is_reg", False) for s in d.subsets)
        for d in blueprint.dataset_group.datasets
    )
    accepted = [w for w in logged if without_reg and w.partition(": ")[2].startswith(NO_REG_WARNING)]
    problems += [f"upstream warned: {w}" for w in logged if w not in accepted]
    if problems:
        raise CheckFailed("\n".join(problems))
    note = f' but "{NO_REG_WARNING}" ({len(accepted)}×)' if accepted else ""
    shape = f"{total} image(s) in {len(subsets)} subset(s)"
    return f"{shape} as items.jsonl lists them, all captioned; no warning{note}"


def quietly(call: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run `call`, returning its result and the "Could not set" lines OneTrainer printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = call()
    return result, [line for line in out.getvalue().splitlines() if "Could not set" in line]


def round_trip(klass: Any, data: Any) -> Any:
    """What OneTrainer makes of `data`: a fresh config of defaults, `from_dict`, `to_dict`."""
    return klass.default_values().from_dict(copy.deepcopy(data)).to_dict()


def check_concepts(path: Path) -> str:
    concept_config = importlib.import_module("modules.util.config.ConceptConfig")
    concepts = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(concepts, list) or not concepts:
        raise CheckFailed("not a non-empty JSON list")
    problems = []
    for i, concept in enumerate(concepts):
        back, unset = quietly(partial(round_trip, concept_config.ConceptConfig, concept))
        problems += [f"concept #{i + 1}: {line}" for line in unset]
        if json.dumps(back) != json.dumps(concept):
            problems += [f"concept #{i + 1}: {diff}" for diff in describe_diff(concept, back)]
    if problems:
        raise CheckFailed("\n".join(problems))
    return f"{len(concepts)} concept(s) round-trip unchanged"


def describe_diff(before: Any, after: Any, where: str = "") -> list[str]:
    """Every difference between a written object and what came back: key order, then values."""
    if not (isinstance(before, dict) and isinstance(after, dict)):
        return [f"{where}: {json.dumps(before)} became {json.dumps(after)}"]
    diffs = []
    if list(before) != list(after) and set(before) == set(after):
        diffs.append(f"{where or 'top'}: key order {list(before)} became {list(after)}")
    for key in dict.fromkeys([*before, *after]):
        if json.dumps(before.get(key)) != json.dumps(after.get(key)):
            diffs += describe_diff(before.get(key), after.get(key), f"{where}.{key}".lstrip("."))
    return diffs


def check_partial(path: Path, module_name: str, class_name: str, many: bool) -> str:
    """Each written key comes back with the same JSON value (missing keys keep defaults)."""
    klass = getattr(importlib.import_module(module_name), class_name)
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data if many else [data]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise CheckFailed("not the expected JSON shape")
    problems = []
    for i, item in enumerate(items):
        back, unset = quietly(partial(round_trip, klass, item))
        label = f"#{i + 1}: " if many else ""
        problems += [f"{label}{line}" for line in unset]
        problems += [f"{label}{diff}" for diff in written_keys_diff(item, back)]
    if problems:
        raise CheckFailed("\n".join(problems))
    return f"{len(items)} object(s): every written key reads back unchanged"


def written_keys_diff(written: dict[str, Any], back: dict[str, Any], where: str = "") -> list[str]:
    diffs = []
    for key, value in written.items():
        name = f"{where}{key}"
        if isinstance(value, dict) and isinstance(back.get(key), dict) and key != "concept_stats":
            diffs += written_keys_diff(value, back[key], f"{name}.")
        elif key not in back:
            diffs.append(f"{name}: not a key OneTrainer keeps")
        elif json.dumps(back[key]) != json.dumps(value):
            diffs.append(f"{name}: {json.dumps(value)} became {json.dumps(back[key])}")
    return diffs


def check_project_data() -> str:
    """apps/training/upstream agrees with the checkouts: script options, sanitizer schemas,
    OneTrainer key lists and versions (catches a pin moved without updating the data)."""
    problems = []
    for script, known in upstream.KOHYA_ARGS.items():
        parser = importlib.import_module(Path(script).stem).setup_parser()
        real = {a.dest for a in parser._actions} - {"help"}
        if real != known:
            problems.append(f"{script}: options added {sorted(real - known)}, gone {sorted(known - real)}")
    sanitizer = importlib.import_module("library.config_util").ConfigSanitizer
    from apps.training.upstream import kohya

    pairs = {
        "SUBSET_ASCENDABLE_SCHEMA": kohya.KOHYA_SUBSET_ASCENDABLE,
        "DO_SUBSET_ASCENDABLE_SCHEMA": kohya.KOHYA_DROPOUT,
        "DB_SUBSET_ASCENDABLE_SCHEMA": kohya.KOHYA_DB_ASCENDABLE,
        "DB_SUBSET_DISTINCT_SCHEMA": kohya.KOHYA_DB_SUBSET_ONLY,
        "FT_SUBSET_DISTINCT_SCHEMA": kohya.KOHYA_FT_SUBSET_ONLY,
        "CN_SUBSET_ASCENDABLE_SCHEMA": kohya.KOHYA_CN_ASCENDABLE,
        "CN_SUBSET_DISTINCT_SCHEMA": kohya.KOHYA_CN_SUBSET_ONLY,
        "DATASET_ASCENDABLE_SCHEMA": kohya.KOHYA_DATASET_ASCENDABLE,
    }
    for attr, ours in pairs.items():
        theirs = {str(key) for key in getattr(sanitizer, attr)}
        if theirs != set(ours):
            problems.append(f"ConfigSanitizer.{attr}: keys {sorted(theirs)}, ours {sorted(ours)}")
    config = "modules.util.config."
    concept = importlib.import_module(config + "ConceptConfig").ConceptConfig.default_values().to_dict()
    train = importlib.import_module(config + "TrainConfig").TrainConfig.default_values()
    sample = importlib.import_module(config + "SampleConfig").SampleConfig.default_values().to_dict()
    expected = [
        ("ConceptConfig", concept, upstream.ONETRAINER_CONCEPT_KEYS, upstream.ONETRAINER_CONCEPT_VERSION),
        ("ConceptConfig.image", concept["image"], upstream.ONETRAINER_CONCEPT_IMAGE_KEYS, 0),
        ("ConceptConfig.text", concept["text"], upstream.ONETRAINER_CONCEPT_TEXT_KEYS, 0),
        ("TrainConfig", train.to_dict(), upstream.ONETRAINER_TRAIN_KEYS, upstream.ONETRAINER_TRAIN_VERSION),
        ("SampleConfig", sample, upstream.ONETRAINER_SAMPLE_KEYS, 0),
    ]
    for name, real_dict, keys, version in expected:
        if list(real_dict) != ["__version", *keys] or real_dict["__version"] != version:
            problems.append(f"{name}: keys/version differ from apps/training/upstream")
    if problems:
        raise CheckFailed("\n".join(problems))
    return "kohya options and sanitizer schemas, OneTrainer keys and versions all match"


def main(argv_: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--sd-scripts", type=Path, required=True, help="kohya-ss/sd-scripts checkout")
    parser.add_argument("--onetrainer", type=Path, required=True, help="Nerogar/OneTrainer checkout")
    parser.add_argument("--mgds", type=Path, help="Nerogar/mgds checkout (put on sys.path)")
    parser.add_argument("--kohya-script", help="override the script found in kohya/train.sh")
    options = parser.parse_args(argv_)
    bundle: Path = options.bundle
    for path in (options.sd_scripts, options.onetrainer):
        if not path.is_dir():
            parser.error(f"{path} is not a directory")
    sys.path[:0] = [str(options.sd_scripts.resolve()), str(options.onetrainer.resolve())]
    if options.mgds:
        sys.path.insert(0, str((options.mgds / "src").resolve()))

    report = Report([options.sd_scripts, options.onetrainer])
    report.run("apps/training/upstream matches the checkouts", check_project_data)
    kohya_checks(report, bundle, options.kohya_script)
    onetrainer_checks(report, bundle)
    if report.passed + report.failed == 1:
        say(f"FAIL  nothing to check under {bundle}")
        return 2
    skipped = f", {report.skipped} skipped" if report.skipped else ""
    say(f"\n{report.passed} passed, {report.failed} failed{skipped}")
    return 1 if report.failed else 0


def kohya_checks(report: Report, bundle: Path, override: str | None) -> None:
    dataset = bundle / "kohya" / "dataset.toml"
    args_toml = bundle / "kohya" / "args.toml"
    if dataset.is_file():
        script = override or detect_script(bundle / "kohya" / "train.sh", "train_network.py")
        report.run(
            f"kohya/dataset.toml ({script})",
            lambda: check_kohya_dataset(script, dataset, args_toml),
        )
        if args_toml.is_file():
            report.run(f"kohya/args.toml ({script})", lambda: check_kohya_args(script, args_toml))
        report.run(
            f"A02 kohya/dataset.toml DreamBooth loader ({script})",
            partial(check_kohya_loader, script, bundle, dataset, args_toml),
        )
    for ti in sorted((bundle / "ti").glob("*/kohya_dataset.toml")):
        script = detect_script(ti.parent / "kohya_ti.sh", "train_textual_inversion.py")
        name = str(ti.relative_to(bundle))
        report.run(f"{name} ({script})", partial(check_kohya_dataset, script, ti, None))
        report.run(
            f"A02 {name} DreamBooth loader ({script})",
            partial(check_kohya_loader, script, bundle, ti, None),
        )


def onetrainer_checks(report: Report, bundle: Path) -> None:
    config_module = "modules.util.config."
    targets = [
        (bundle / "onetrainer" / "concepts.json", "concepts"),
        (bundle / "onetrainer" / "config.json", "config"),
        (bundle / "onetrainer" / "samples.json", "samples"),
    ]
    for ti in sorted((bundle / "ti").glob("*/")):
        targets += [
            (ti / "onetrainer_concepts.json", "concepts"),
            (ti / "onetrainer_config.json", "config"),
        ]
    for path, kind in targets:
        if not path.is_file():
            continue
        name = str(path.relative_to(bundle))
        if kind == "concepts":
            report.run(f"{name} (ConceptConfig round trip)", partial(check_concepts, path))
        elif kind == "config":
            report.run(
                f"{name} (TrainConfig)",
                partial(check_partial, path, config_module + "TrainConfig", "TrainConfig", False),
            )
        else:
            report.run(
                f"{name} (SampleConfig)",
                partial(check_partial, path, config_module + "SampleConfig", "SampleConfig", True),
            )


if __name__ == "__main__":
    sys.exit(main())
