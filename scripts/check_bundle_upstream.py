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
* OneTrainer `concepts.json` files: each concept survives `ConceptConfig.default_values()
  .from_dict(c).to_dict()` unchanged (same JSON text: keys, order, types) with no "Could not set".
* OneTrainer `config.json` / `samples.json` files: every written key comes back from TrainConfig /
  SampleConfig with the same value, with no "Could not set".

Prints PASS or FAIL per check and exits 1 when any check fails (2 when there is nothing to check).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import io
import json
import re
import sys
import tomllib
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

KOHYA_SCRIPTS = (
    "sdxl_train_textual_inversion.py",
    "train_textual_inversion.py",
    "sdxl_train_network.py",
    "train_network.py",
    "sdxl_train.py",
    "train_db.py",
)
# ConfigSanitizer(dreambooth, finetuning, controlnet = --masked_loss, dropout) per script, as each
# script constructs it at the pinned commit (mirrors apps/training/upstream/kohya.py).
SANITIZER_FLAGS = {
    "train_network.py": (True, True, True),
    "sdxl_train_network.py": (True, True, True),
    "train_db.py": (True, False, True),
    "sdxl_train.py": (True, True, True),
    "train_textual_inversion.py": (True, True, False),
    "sdxl_train_textual_inversion.py": (True, True, False),
}


class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def run(self, name: str, check: Callable[[], str | None]) -> None:
        """`check` returns a detail for PASS or raises; any exception is a FAIL."""
        try:
            detail = check()
        except Exception as exc:  # upstream raises many kinds; each one is a failure
            self.failed += 1
            message = str(exc).strip() or type(exc).__name__
            print(f"FAIL  {name}\n      {type(exc).__name__}: {message}")
            if not isinstance(exc, CheckFailed):
                tail = traceback.format_exc().strip().splitlines()[-4:-1]
                print("\n".join(f"      | {line}" for line in tail))
            return
        self.passed += 1
        print(f"PASS  {name}" + (f"\n      {detail}" if detail else ""))


class CheckFailed(Exception):
    pass


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
def argv(values: list[str]):
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


def check_kohya_dataset(script: str, dataset_toml: Path, args_toml: Path | None) -> str:
    config_util = importlib.import_module("library.config_util")
    namespace = kohya_namespace(script, dataset_toml, args_toml)
    dreambooth, finetuning, dropout = SANITIZER_FLAGS[script]
    flags = (dreambooth, finetuning, bool(getattr(namespace, "masked_loss", False)), dropout)
    sanitizer = config_util.ConfigSanitizer(*flags)
    user_config = config_util.load_user_config(str(dataset_toml))
    sanitizer.sanitize_user_config(user_config)
    blueprint = config_util.BlueprintGenerator(sanitizer).generate(user_config, namespace)
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
        raise CheckFailed("; ".join(problems))
    return f"{len(seen)} key(s), all options of {script}"


def quietly(call: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run `call`, returning its result and the "Could not set" lines OneTrainer printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = call()
    return result, [line for line in out.getvalue().splitlines() if "Could not set" in line]


def check_concepts(path: Path) -> str:
    concept_config = importlib.import_module("modules.util.config.ConceptConfig")
    concepts = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(concepts, list) or not concepts:
        raise CheckFailed("not a non-empty JSON list")
    problems = []
    for i, concept in enumerate(concepts):
        back, unset = quietly(
            lambda c=concept: concept_config.ConceptConfig.default_values()
            .from_dict(copy.deepcopy(c))
            .to_dict()
        )
        problems += [f"concept #{i + 1}: {line}" for line in unset]
        if json.dumps(back) != json.dumps(concept):
            problems.append(f"concept #{i + 1}: round trip differs: {describe_diff(concept, back)}")
    if problems:
        raise CheckFailed("; ".join(problems))
    return f"{len(concepts)} concept(s) round-trip unchanged"


def describe_diff(before: Any, after: Any, where: str = "") -> str:
    if isinstance(before, dict) and isinstance(after, dict):
        if list(before) != list(after) and set(before) == set(after):
            return f"{where or 'top'}: key order {list(before)} became {list(after)}"
        for key in dict.fromkeys([*before, *after]):
            if json.dumps(before.get(key)) != json.dumps(after.get(key)):
                return describe_diff(before.get(key), after.get(key), f"{where}.{key}".lstrip("."))
    return f"{where}: {json.dumps(before)} became {json.dumps(after)}"


def check_partial(path: Path, module_name: str, class_name: str, many: bool) -> str:
    """Each written key comes back with the same JSON value (missing keys keep defaults)."""
    klass = getattr(importlib.import_module(module_name), class_name)
    data = json.loads(path.read_text(encoding="utf-8"))
    items = data if many else [data]
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise CheckFailed("not the expected JSON shape")
    problems = []
    for i, item in enumerate(items):
        back, unset = quietly(lambda d=item: klass.default_values().from_dict(copy.deepcopy(d)).to_dict())
        label = f"#{i + 1}: " if many else ""
        problems += [f"{label}{line}" for line in unset]
        problems += [f"{label}{diff}" for diff in written_keys_diff(item, back)]
    if problems:
        raise CheckFailed("; ".join(problems))
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

    report = Report()
    kohya_checks(report, bundle, options.kohya_script)
    onetrainer_checks(report, bundle)
    total = report.passed + report.failed
    if total == 0:
        print(f"FAIL  nothing to check under {bundle}")
        return 2
    print(f"\n{report.passed} passed, {report.failed} failed")
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
    for ti in sorted((bundle / "ti").glob("*/kohya_dataset.toml")):
        script = detect_script(ti.parent / "kohya_ti.sh", "train_textual_inversion.py")
        report.run(
            f"{ti.relative_to(bundle)} ({script})",
            lambda ti=ti, script=script: check_kohya_dataset(script, ti, None),
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
            report.run(f"{name} (ConceptConfig round trip)", lambda p=path: check_concepts(p))
        elif kind == "config":
            report.run(
                f"{name} (TrainConfig)",
                lambda p=path: check_partial(p, config_module + "TrainConfig", "TrainConfig", False),
            )
        else:
            report.run(
                f"{name} (SampleConfig)",
                lambda p=path: check_partial(p, config_module + "SampleConfig", "SampleConfig", True),
            )


if __name__ == "__main__":
    sys.exit(main())
