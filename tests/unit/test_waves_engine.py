"""`--serial`: parsed once into a `WaveSize`, which splits the selected transfers in waves."""

from __future__ import annotations

import pytest

from transfer_runner.engine.waves import WaveSize
from transfer_runner.errors import ConfigError


@pytest.mark.parametrize(
    ("text", "items", "sizes"),
    [
        ("1", 3, [1, 1, 1]),
        ("2", 5, [2, 2, 1]),
        ("10", 3, [3]),
        ("50%", 4, [2, 2]),
        ("10%", 5, [1, 1, 1, 1, 1]),  # at least one transfer a wave
        ("100%", 7, [7]),
        (" 3 ", 0, [0]),
    ],
)
def test_a_wave_size_splits_in_order(text: str, items: int, sizes: list[int]) -> None:
    waves = WaveSize.parse(text).split(list(range(items)))
    assert [len(w) for w in waves] == sizes
    assert [i for w in waves for i in w] == list(range(items))


@pytest.mark.parametrize("text", ["0", "0%", "101%", "-1", "ten", "", "%", "1.5", "5%%"])
def test_what_is_not_a_wave_size_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError):
        WaveSize.parse(text)


def test_it_reads_back_as_written() -> None:
    assert str(WaveSize.parse("25%")) == "25%" and str(WaveSize.parse("4")) == "4"
