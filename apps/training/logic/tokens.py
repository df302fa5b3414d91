"""CLIP BPE token counts for the caption budget (docs/export-captions.md#token-budget).

Our own implementation of the public CLIP tokenizer algorithm, so that web and job processes
count tokens without the ML stack (torch and open_clip stay inside apps/taggers/engine/): text
cleanup, byte-level symbols, the word-splitting pattern, then byte-pair merges in rank order from
the vendored table `apps/training/data/bpe_simple_vocab_16e6.txt.gz` (see its README). The counts
equal open_clip's `SimpleTokenizer().encode` (tests/training/logic/test_tokens.py).
"""

from __future__ import annotations

import gzip
import html
import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import regex

VOCAB_FILE = Path(__file__).resolve().parent.parent / "data" / "bpe_simple_vocab_16e6.txt.gz"
MERGE_COUNT = 49152 - 256 - 2  # merges the CLIP vocabulary uses (the file holds a few more)
SPECIAL_TOKENS = ("<start_of_text>", "<end_of_text>")
WORD_END = "</w>"

# Words: a special token, an English contraction, a run of letters, one digit, or a run of other
# non-space characters (case-insensitive, like the reference tokenizer).
_WORDS = regex.compile(
    "|".join(SPECIAL_TOKENS) + r"""|'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


@dataclass(frozen=True)
class _Tables:
    byte_symbol: tuple[str, ...]  # byte value → the printable symbol standing for it
    ids: dict[str, int]  # vocabulary entry → token id
    ranks: dict[tuple[str, str], int]  # symbol pair → merge priority (lower first)


def _byte_symbols() -> tuple[str, ...]:
    """Each byte as a printable character: printable Latin-1 bytes stand for themselves, the rest
    (controls, space, a few others) for 256, 257, … in byte order."""
    printable = [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    symbols: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in symbols:
            symbols[b] = chr(256 + extra)
            extra += 1
    return tuple(symbols[b] for b in range(256))


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    byte_symbol = _byte_symbols()
    with gzip.open(VOCAB_FILE, "rt", encoding="utf-8") as handle:
        lines = handle.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : MERGE_COUNT + 1]]
    # Vocabulary order (ids): byte symbols in the order printable-then-extra, the same with a word
    # end, each merge's result, then the special tokens.
    ordered = sorted(range(256), key=lambda b: ord(byte_symbol[b]))
    base = [byte_symbol[b] for b in ordered]
    entries = [*base, *(symbol + WORD_END for symbol in base), *("".join(pair) for pair in merges)]
    entries.extend(SPECIAL_TOKENS)
    ids = {entry: index for index, entry in enumerate(entries)}
    ranks = {(pair[0], pair[1]): rank for rank, pair in enumerate(merges)}
    return _Tables(byte_symbol=byte_symbol, ids=ids, ranks=ranks)


_QUOTES_SINGLE = re.compile("[\u02bc\u2018-\u201b]")
_QUOTES_DOUBLE = re.compile("[\u201c-\u201f]")
_CONTROLS = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]")
_LATIN_LIGATURES = {
    **{ord(c): unicodedata.normalize("NFKC", c) for c in "ĲĳǱǲǳǄǅǆǇǈǉǊǋǌ"},
    ord("ŉ"): "ʼn",
    **{code: unicodedata.normalize("NFKC", chr(code)) for code in range(0xFB00, 0xFB07)},
}
_WIDTH = {0x3000: " "} | {
    code: unicodedata.normalize("NFKC", chr(code))
    for code in range(0xFF01, 0xFFF0)
    if unicodedata.normalize("NFKC", chr(code)) != chr(code)
}


def clean(text: str) -> str:
    """The text the tokenizer sees: Latin ligatures split, full- and half-width forms to normal
    width, curly quotes straightened, control characters removed, NFC, HTML entities decoded
    (twice), whitespace collapsed, lower case. (The reference also repairs mojibake; captions
    are valid Unicode from the database, so that step is left out.)"""
    text = text.translate(_LATIN_LIGATURES).translate(_WIDTH)
    text = _QUOTES_DOUBLE.sub('"', _QUOTES_SINGLE.sub("'", text))
    text = _CONTROLS.sub("", text.replace("\r\n", "\n"))
    text = unicodedata.normalize("NFC", text)
    text = html.unescape(html.unescape(text))
    return " ".join(text.split()).lower()


@lru_cache(maxsize=65536)
def _word_pieces(word: str) -> tuple[str, ...]:
    """Byte-pair encode one pre-split word (as byte symbols): start from single symbols with a
    word end on the last, merge the best-ranked adjacent pair everywhere, repeat."""
    if word in SPECIAL_TOKENS:
        return (word,)
    pieces = [*word[:-1], word[-1] + WORD_END]
    ranks = _tables().ranks
    while len(pieces) > 1:
        best: tuple[str, str] | None = None
        best_rank = len(ranks)
        for pair in itertools.pairwise(pieces):
            rank = ranks.get(pair)
            if rank is not None and rank < best_rank:
                best, best_rank = pair, rank
        if best is None:
            break
        merged: list[str] = []
        index = 0
        while index < len(pieces):
            if index + 1 < len(pieces) and (pieces[index], pieces[index + 1]) == best:
                merged.append(pieces[index] + pieces[index + 1])
                index += 2
            else:
                merged.append(pieces[index])
                index += 1
        pieces = merged
    return tuple(pieces)


def _symbols(word: str) -> str:
    byte_symbol = _tables().byte_symbol
    return "".join(byte_symbol[b] for b in word.encode("utf-8"))


def tokens(text: str) -> list[str]:
    """The BPE pieces of `text` (no start or end token)."""
    out: list[str] = []
    for word in _WORDS.findall(clean(text)):
        out.extend(_word_pieces(word if word in SPECIAL_TOKENS else _symbols(word)))
    return out


def token_ids(text: str) -> list[int]:
    """CLIP token ids of `text`, without the start and end tokens."""
    ids = _tables().ids
    return [ids[piece] for piece in tokens(text)]


@lru_cache(maxsize=65536)
def count_tokens(text: str) -> int:
    """How many of the 75 usable CLIP positions `text` takes."""
    return len(tokens(text))


def count_joined(parts: Sequence[str]) -> int:
    """Tokens of `", ".join(parts)`, from cached counts of each part with its comma: the space
    after a comma always ends a word and the cleanup acts within a part, so the sum is exact
    (tests/training/logic/test_tokens.py checks it) and trimming a line costs little."""
    if not parts:
        return 0
    return sum(count_tokens(part + ",") for part in parts[:-1]) + count_tokens(parts[-1])


def is_single_token(word: str) -> bool:
    """Whether `word` encodes to exactly one CLIP token (an init word for Textual Inversion)."""
    return count_tokens(word) == 1


def in_vocab(word: str) -> bool:
    """Whether `word` (cleaned, lower case) is itself a whole-word CLIP vocabulary entry
    (`word</w>`): a Textual Inversion token must not be."""
    cleaned = clean(word)
    if not cleaned or any(ch.isspace() for ch in cleaned):
        return False
    return _symbols(cleaned) + WORD_END in _tables().ids
