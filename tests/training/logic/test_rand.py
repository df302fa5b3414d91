"""§8.2 of the export spec: the seeded random function and the OneTrainer concept seed."""

from __future__ import annotations

import pytest

from apps.training.logic.rand import concept_seed, u


def test_spec_vectors() -> None:
    assert u(1234, "i3f9a2c1d0b7e", 1, "drop", "t:smile") == 0.7568272801099709
    assert u(1234, "i3f9a2c1d0b7e", 1, "order", "t:smile") == 0.007859938490719975
    assert u(1234, "concept", "mychar--flip--k3") == 0.17324262301911553


def test_concept_seed_example() -> None:
    assert concept_seed(1234, "mychar--flip--k3") == 186017850


def test_ints_are_written_like_their_string() -> None:
    assert u(1234, "a") == u("1234", "a")


def test_parts_are_separated() -> None:
    assert u("ab", "c") != u("a", "bc")
    assert u("a") != u("a", "")


def test_range_and_spread() -> None:
    values = [u(7, "spread", n) for n in range(2000)]
    assert all(0.0 <= value < 1.0 for value in values)
    assert 0.45 < sum(values) / len(values) < 0.55


@pytest.mark.parametrize("bad", [1.5, None, True])
def test_other_types_are_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        u(1, bad)
