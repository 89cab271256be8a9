"""Addition and copy generators checked against Python integer arithmetic; seeds; sizes."""

from __future__ import annotations

import pytest

from recurdepth.data.registry import get_dataset
from recurdepth.data.sequences import MAX_DIGITS, SEPARATOR, generate, positions
from recurdepth.errors import ConfigError


def _number(digits) -> int:
    """Digits least significant first → int (independent of the generator's own carry loop)."""
    return int("".join(str(int(d)) for d in reversed(list(digits))) or "0")


@pytest.mark.parametrize("split,digits", [("train", 1), ("train", 8), ("test", 8), ("test", 24)])
def test_addition_matches_python_integers(split, digits):
    tokens, labels = generate("addition", split, 300, digits, 0)
    assert tokens.shape == labels.shape == (300, digits + 1)
    lengths = set()
    for tok, lab in zip(tokens, labels):
        a, b = _number(tok // 10), _number(tok % 10)
        assert tok[-1] == 0  # the last position holds (0, 0): room for the final carry
        assert _number(lab) == a + b
        assert str(a + b).zfill(digits + 1)[::-1] == "".join(map(str, lab))
        lengths.update((len(str(a)), len(str(b))))
    if split == "test":
        assert lengths == {digits}  # exactly N digits each (leading digit non-zero)
    elif digits == 8:
        assert lengths == set(range(1, 9))  # every length 1..N occurs in training


def test_same_seed_same_bytes_other_seed_or_split_differs():
    a = generate("addition", "train", 50, 12, 3)
    b = generate("addition", "train", 50, 12, 3)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes()
    assert a[0].tobytes() != generate("addition", "train", 50, 12, 4)[0].tobytes()
    assert a[0].tobytes() != generate("addition", "test", 50, 12, 3)[0].tobytes()


def test_copy_repeats_the_digits_after_separators():
    tokens, labels = generate("copy", "train", 20, 7, 0)
    assert tokens.shape == labels.shape == (20, 14)
    assert (tokens[:, 7:] == SEPARATOR).all() and (tokens[:, :7] < 10).all()
    assert (labels[:, :7] == tokens[:, :7]).all() and (labels[:, 7:] == tokens[:, :7]).all()


def test_positions_and_data_set_records():
    assert positions("addition", 8) == get_dataset("addition").image_side(8) == 9
    assert positions("copy", 8) == get_dataset("copy").image_side(8) == 16
    x, y = get_dataset("addition").load_tensors("unused", "test", size=8, limit=10)
    assert x.shape == (10, 1, 1, 9) and y.shape == (10, 9)


def test_sequence_cap_and_bad_names_are_one_line_errors():
    for bad in (0, MAX_DIGITS + 1):
        with pytest.raises(ConfigError, match="the sequence cap") as e:
            generate("addition", "train", 2, bad, 0)
        assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="valid choices: addition, copy"):
        generate("multiplication", "train", 2, 3, 0)
