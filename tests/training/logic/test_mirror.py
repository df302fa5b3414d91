"""Caption-aware mirroring: left/right swaps and tags that block flipping."""

from __future__ import annotations

from apps.training.logic.mirror import mirror_blocked, swap_directional, swap_text
from tests.training.logic.factories import group, item, tag


def test_swap_text_whole_words() -> None:
    assert swap_text("left_hand") == "right_hand"
    assert swap_text("looking to the left") == "looking to the right"
    assert swap_text("wrong left arm, right leg") == "wrong right arm, left leg"
    assert swap_text("Left eye") == "Right eye"
    assert swap_text("RIGHT") == "LEFT"
    assert swap_text("looking_to_the_side") == "looking_to_the_side"
    assert swap_text("leftover, righteous, bright") == "leftover, righteous, bright"


def test_swap_directional_item() -> None:
    original = item(
        tag("left_hand"),
        tag("smile"),
        group("red left glove", "blue right glove"),
        short=("she raises her left hand",),
    )
    swapped = swap_directional(original)
    assert [e.text for e in swapped.entries] == ["right_hand", "smile", "red right glove, blue left glove"]
    assert [e.key for e in swapped.entries] == [
        "t:right_hand",
        "t:smile",
        "g:red right glove, blue left glove",
    ]
    assert swapped.entries[2].members == ("red right glove", "blue left glove")
    assert swapped.descriptions == {"short": ("she raises her right hand",)}
    assert swapped.item_id == original.item_id
    assert swap_directional(swapped) == original


def test_mirror_blocked() -> None:
    it = item(tag("smile"), group("English text", "logo"))
    assert mirror_blocked(it, ["Logo"])
    assert mirror_blocked(item(tag("asymmetrical_hair")), ["asymmetrical hair"])
    assert not mirror_blocked(it, ["signature"])
    assert not mirror_blocked(it, [])
