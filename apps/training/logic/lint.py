"""Export lint checks that need no files (docs/export-captions.md#lint): caption text, Textual
Inversion tokens, bucket settings, image fit, token budget, keep counts. Errors (E) block the
export; warnings (W) go to EXPORT_REPORT.md. Each message says what to fix. The file-level
checks (L04, L07, L10, L12, L15-L17) live with the bundle writer and the planner."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from apps.training.logic import zones
from apps.training.logic.buckets import BucketFit, kohya_predict
from apps.training.logic.captions import KOHYA_RENDERERS, base_pieces, neutral_text, token_budget
from apps.training.logic.tokens import count_tokens, in_vocab, is_single_token
from apps.training.plan import CaptionPolicy, ImagePolicy, ItemCaption, Renderer

Severity = Literal["error", "warning"]
TI_TOKEN = re.compile(r"[a-z][a-z0-9]{2,}")
MARK = "|||"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    message: str
    item: str | None = None
    path: str | None = None


def _error(code: str, message: str, item: str | None, path: str | None) -> Finding:
    return Finding(code, "error", message, item, path)


# --- L01, L02, L03: rendered lines ------------------------------------------------------------


def prefix_items(item: ItemCaption, policy: CaptionPolicy, *, token: str = "") -> set[str]:
    """Every `,`-piece a neutral line's prefix can hold (entries, descriptions and the TI token
    in the prefix zone): `prefix_items` for `lint_keep`."""
    pieces = [piece for piece in zones.entry_pieces(item, policy) if piece.zone == "prefix"]
    for name, _, texts in zones.description_sets(item, policy):
        for index, text in enumerate(texts):
            piece = zones.description_piece(policy, name, index, text)
            if piece is not None and piece.zone == "prefix":
                pieces.append(piece)
    found = {part.strip() for piece in pieces for part in piece.text().split(",") if part.strip()}
    return found | ({token} if token else set())


def lint_lines(
    lines: Sequence[str],
    renderer: Renderer,
    *,
    marked: bool | None = None,
    item: str | None = None,
    path: str | None = None,
) -> list[Finding]:
    """L01 (empty file/line/item, stray commas), L02 (`|||` only in marked kohya lines, 1-2 per
    line) and L03 (kohya braces) on one caption file's lines (`render` lines: diffusers' empty
    caption-dropout variants are not lines). `marked`: whether the kohya subset parses `|||`
    (None: either form, but one form per file)."""
    findings: list[Finding] = []
    if not lines:
        findings.append(_error("L01", "empty caption file: write at least one caption line", item, path))
    kohya = renderer in KOHYA_RENDERERS
    forms: set[bool] = set()
    for number, line in enumerate(lines, start=1):
        where = f"line {number}"
        findings.extend(_l01(line, kohya, where, item, path))
        marks = line.count(MARK)
        forms.add(marks > 0)
        allowed = (1, 2) if kohya and marked else (0,) if not kohya or marked is False else (0, 1, 2)
        if marks not in allowed:
            rule = (
                "1 or 2 `|||` in marked kohya lines"
                if allowed == (1, 2)
                else "no `|||` outside marked kohya lines"
            )
            findings.append(
                _error("L02", f"{where} holds {marks} `|||`: {rule}; fix the zone markup", item, path)
            )
        if kohya:
            problem = brace_problem(line)
            if problem:
                findings.append(_error("L03", f"{where}: {problem}", item, path))
    if kohya and marked is None and len(forms) > 1:
        findings.append(
            _error("L02", "marked and plain kohya lines in one file: use one form per subset", item, path)
        )
    return findings


def _l01(line: str, kohya: bool, where: str, item: str | None, path: str | None) -> list[Finding]:
    if not line.strip():
        return [_error("L01", f"{where} is empty: every line must hold a caption", item, path)]
    zones_text = line.split(MARK) if kohya else [line]
    problems = []
    for zone in zones_text:
        text = zone.replace(";;;", ",") if kohya else zone
        stripped = text.strip()
        if not stripped:
            continue
        if stripped.startswith(",") or stripped.endswith(","):
            problems.append("a leading or trailing `,`")
        if any(not piece.strip() for piece in stripped.split(",")):
            problems.append("an empty item (`, ,`)")
    if not any(piece.strip() for zone in zones_text for piece in zone.replace(";;;", ",").split(",")):
        problems.append("no item")
    return [
        _error("L01", f"{where} has {problem}: remove empty tags and stray separators", item, path)
        for problem in dict.fromkeys(problems)
    ]


def brace_problem(line: str) -> str:
    """Why a kohya line's braces are wrong, or "": literal braces must be `{{`/`}}`; a bare
    `{a|b}` (a §8.3 wildcard) must close, not nest and hold no `,`."""
    index, open_at = 0, -1
    while index < len(line):
        char = line[index]
        if char == "{":
            if open_at >= 0:
                return "a `{` inside a wildcard: escape literal braces as `{{`"
            if line.startswith("{{", index):
                index += 2
                continue
            open_at = index
        elif char == "}":
            if open_at >= 0:
                if "," in line[open_at:index]:
                    return "a wildcard `{…}` holds `,`: only single tags become wildcards"
                open_at = -1
            elif line.startswith("}}", index):
                index += 2
                continue
            else:
                return "a lone `}`: escape literal braces as `}}`"
        index += 1
    return "an unclosed `{`: escape literal braces as `{{`" if open_at >= 0 else ""


# --- L05: caption values ----------------------------------------------------------------------


def lint_caption(item: ItemCaption, *, path: str | None = None) -> list[Finding]:
    """L05: tag, member and description texts hold no newline, `|||` or `;;;`; commas only in
    groups (between members) and descriptions."""
    findings = []

    def bad(text: str, what: str, commas: bool) -> None:
        marks = [mark for mark in ("\n", "\r", MARK, ";;;") if mark in text]
        if not commas and "," in text:
            marks.append(",")
        if marks:
            shown = ", ".join(repr(mark) for mark in marks)
            findings.append(
                _error(
                    "L05",
                    f"{what} {text!r} holds {shown}: rename the tag or make it a group",
                    item.item_id,
                    path,
                )
            )

    for entry in item.entries:
        if entry.members:
            for member in entry.members:
                bad(member, "group member", commas=False)
        else:
            bad(entry.text, "tag", commas=False)
    for texts in item.descriptions.values():
        for text in texts:
            bad(text, "description", commas=True)
    return findings


# --- L06: Textual Inversion -------------------------------------------------------------------


def _whole_word(token: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![A-Za-z0-9_]){re.escape(token)}(?![A-Za-z0-9_])")


def lint_ti(
    token: str, init_word: str, num_vectors: int, lines_by_renderer: Mapping[str, Iterable[Sequence[str]]]
) -> list[Finding]:
    """L06: the token's form, that neither it nor its vector names are CLIP words, that it is in
    every kohya TI line (and inside no other word: kohya replaces it as a substring), first in
    every OneTrainer TI line, and that the init word is one CLIP token. `lines_by_renderer` maps
    `ti_kohya` / `ti_onetrainer` to the files' lines."""
    found: list[str] = []
    if not TI_TOKEN.fullmatch(token):
        found.append(f"token {token!r} must match [a-z][a-z0-9]{{2,}}")
    else:
        names = [
            token,
            *(f"{token}{n}" for n in range(1, num_vectors)),
            *(f"{token}_{n}" for n in range(1, num_vectors)),
        ]
        known = [name for name in names if in_vocab(name)]
        if known:
            found.append(f"{', '.join(known)} already CLIP words: pick a made-up token")
    if not is_single_token(init_word):
        found.append(f"init word {init_word!r} is not one CLIP token: pick a single common word")
    whole = _whole_word(token) if token else None
    for lines in lines_by_renderer.get("ti_kohya", ()):
        for line in lines:
            if whole is None or not whole.search(line):
                found.append(f"kohya TI line {line!r} lacks the token as a word: it would train nothing")
            elif line.count(token) != len(whole.findall(line)):
                found.append(
                    f"kohya TI line {line!r} holds the token inside another word: rename the tag or token"
                )
    for lines in lines_by_renderer.get("ti_onetrainer", ()):
        for line in lines:
            # A merged prefix ("token; 1girl") still starts with the token as an item of its own.
            if re.split(r"[,;]", line, maxsplit=1)[0].strip() != token:
                found.append(f"OneTrainer TI line {line!r} must start with the token")
    return [_error("L06", message, None, None) for message in found]


# --- L08, L09: buckets and images -------------------------------------------------------------


def lint_buckets(
    family: str, resolution: int | tuple[int, int], min_: int, max_: int, step: int
) -> list[Finding]:
    """L08: kohya bucket settings bracket the resolution, sit on the step, and the step suits
    the family's scripts (64 for sd1/sd2, 32 for sdxl)."""
    sides = (resolution, resolution) if isinstance(resolution, int) else resolution
    found = []
    divisor = 32 if family == "sdxl" else 64
    if step <= 0 or step % divisor:
        found.append(f"bucket step {step} must be a positive multiple of {divisor} for {family}")
    if min_ > min(sides):
        found.append(f"min bucket {min_} is above the resolution {min(sides)}: lower it")
    if max_ < max(sides):
        found.append(f"max bucket {max_} is below the resolution {max(sides)}: raise it")
    if step > 0 and (min_ % step or max_ % step):
        found.append(f"min {min_} and max {max_} buckets must be multiples of the step {step}")
    return [_error("L08", message, None, None) for message in found]


def kohya_fit(
    width: int, height: int, policy: ImagePolicy, *, item: str | None = None
) -> tuple[BucketFit | None, list[Finding]]:
    """kohya's bucket for one image, or an L08 error when there is none: with `no_upscale` kohya
    floors the image's own size to the step, so a side under one step is a zero-size bucket
    (kohya's `BucketManager.select_bucket`, then a division by zero)."""
    try:
        fit = kohya_predict(
            width,
            height,
            resolution=policy.resolution,
            min_=policy.bucket_min,
            max_=policy.bucket_max,
            step=policy.bucket_step,
            no_upscale=policy.no_upscale,
        )
    except ValueError:
        message = (
            f"{width}×{height} has a side under the bucket step ({policy.bucket_step}px) and no_upscale is "
            "on: kohya would give it a zero-size bucket; turn no_upscale off or drop the image"
        )
        return None, [_error("L08", message, item, None)]
    return fit, []


def lint_image(
    width: int, height: int, fit: BucketFit | None, policy: ImagePolicy, *, item: str | None = None
) -> list[Finding]:
    """L09 warnings: short side under `min_source_side`, aspect over `max_aspect`, crop loss
    over 20 %, kohya upscaling (`fit` is the kohya prediction)."""
    found = []
    short, long = min(width, height), max(width, height)
    if policy.min_source_side and short < policy.min_source_side:
        found.append(
            f"short side {short}px is under {policy.min_source_side}px: use a larger source or drop it"
        )
    if policy.max_aspect and long / short > policy.max_aspect:
        found.append(f"aspect {long / short:.2f} is over {policy.max_aspect}: crop the image")
    if fit is not None and fit.crop_loss > 0.20:
        found.append(f"the bucket crop removes {fit.crop_loss:.0%}: crop the image closer to a bucket shape")
    if fit is not None and fit.upscale:
        found.append(
            f"kohya upscales {width}×{height} to {fit.resized[0]}×{fit.resized[1]}: use a larger source"
        )
    return [Finding("L09", "warning", message, item) for message in found]


# --- L11, L13, L14 ---------------------------------------------------------------------------


def lint_budget(
    item: ItemCaption,
    policy: CaptionPolicy,
    renderers: Iterable[Renderer] = ("kohya", "neutral", "diffusers"),
    *,
    token: str = "",
) -> list[Finding]:
    """L11: the fixed part of a line (prefix and suffix, with the longest description when it
    sits there, and the TI token in TI renderings) over a renderer's token budget: trimming flex
    items cannot make it fit."""
    descriptions = [
        piece
        for name, _, texts in zones.description_sets(item, policy)
        for index, text in enumerate(texts)
        if (piece := zones.description_piece(policy, name, index, text)) is not None and piece.zone != "flex"
    ]
    over: list[str] = []
    worst = 0
    for renderer in dict.fromkeys(renderers):
        fixed = [piece for piece in base_pieces(item, policy, renderer, token) if piece.zone != "flex"]
        variants = [zones.in_file_order([*fixed, d]) for d in descriptions] or [fixed]
        size = max(count_tokens(neutral_text(pieces)) for pieces in variants)
        if size > token_budget(policy, renderer):
            over.append(f"{renderer} {token_budget(policy, renderer)}")
            worst = max(worst, size)
    if not over:
        return []
    return [
        _error(
            "L11",
            f"prefix and suffix take {worst} CLIP tokens, over the budget ({', '.join(over)}): shorten the "
            "description or move tag types to the flex zone",
            item.item_id,
            None,
        )
    ]


def _prefix_ok(piece: str, allowed: Collection[str]) -> bool:
    return piece in allowed or all(part.strip() in allowed for part in piece.split(";"))


def lint_keep(
    lines: Sequence[str],
    keep: int,
    *,
    expected: int | None = None,
    prefix_items: Collection[str] | None = None,
    item: str | None = None,
    path: str | None = None,
) -> list[Finding]:
    """L13 on a neutral file of a `k<K>` partition: K is the partition's (`expected`), and each
    line starts with K items, from `prefix_items` when given (merged prefixes are `; `-joined).
    A materialised line whose whole prefix was dropped holds no prefix item; its first K items
    stay in place (reported as an approximation) and pass."""
    found = []
    if expected is not None and keep != expected:
        found.append(
            f"the image keeps {keep} prefix items but its partition k{expected}: re-plan its partition"
        )
    for number, line in enumerate(lines, start=1):
        pieces = [piece.strip() for piece in line.split(",")]
        head = pieces[:keep]
        if len(head) < keep or not all(head):
            found.append(f"line {number} has fewer than {keep} items: its prefix is missing")
        elif (
            prefix_items is not None
            and not all(_prefix_ok(piece, prefix_items) for piece in head)
            and any(part.strip() in prefix_items for piece in pieces for part in piece.split(";"))
        ):
            found.append(
                f"line {number} does not start with the image's {keep} prefix items: use merged prefixes"
            )
    return [_error("L13", message, item, path) for message in found]


def lint_keep_entries(entries: Iterable[str], *, path: str | None = None) -> list[Finding]:
    """L14 warning: non-ASCII keep-file entries (OneTrainer reads the file in the platform
    encoding, so they may not match on Windows)."""
    odd = sorted({entry for entry in entries if not entry.isascii()})
    if not odd:
        return []
    shown = ", ".join(odd[:5]) + (" …" if len(odd) > 5 else "")
    return [
        Finding(
            "L14",
            "warning",
            f"{len(odd)} keep-file entries are not ASCII ({shown}): on Windows run OneTrainer with UTF-8 "
            "(PYTHONUTF8=1) or rename those tags",
            None,
            path,
        )
    ]
