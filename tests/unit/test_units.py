"""lab.units: one formatter each for sizes (IEC), shown durations and ages, used by every layer."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from actions import policy
from lab import model, units
from lab.config import format_duration, parse_duration
from tui import format as tui_format


def test_sizes_are_iec_with_one_decimal() -> None:
    assert [units.size(n) for n in (0, 1023, 1024, 1536, 5 * units.MIB, 20 * units.GIB)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "5.0 MiB",
        "20.0 GiB",
    ]
    assert units.size(1024**5) == "1.0 PiB"


def test_every_layer_shows_a_size_the_same_way() -> None:
    # restic counts bytes; the restore plan used to say 1.5 MB where the panes said 1.4 MiB
    n = 1_500_000
    assert units.size(n) == "1.4 MiB"
    assert tui_format.bytes_h(n) == model.compact_bytes(n) == "1.4 MiB"
    assert tui_format.bytes_h(None) == "-"


def test_durations_follow_the_age_steps_plus_one_unit() -> None:
    seconds = (0, 0.2, 5, 90, 600, 3900, 3930, 7200, 93600, 172800, 3 * 86400 + 4 * 3600)
    assert [units.duration(s) for s in seconds] == [
        "0s",
        "0.2s",
        "5s",
        "90s",
        "10m",
        "65m",
        "65m30s",
        "2h",
        "26h",
        "2d",
        "3d4h",
    ]


def test_every_layer_shows_a_duration_the_same_way() -> None:
    # an uptime in the hosts pane used to read 1h05m where a refusal said 65m
    assert tui_format.duration_h(3900) == policy.human_duration(3900) == "65m"
    assert tui_format.duration_h(None) == "-"


def test_ages_are_one_unit_in_the_same_steps() -> None:
    assert [units.age(s) for s in (0, 4, 119, 120, 7199, 7200, 172799, 172800)] == [
        "0s",
        "4s",
        "119s",
        "2m",
        "119m",
        "2h",
        "47h",
        "2d",
    ]
    assert [units.age(s, step=5) for s in (0, 4, 5, 9, 12)] == ["<5s", "<5s", "5s", "5s", "10s"]


@given(st.integers(min_value=0, max_value=10**10) | st.integers(172_000_000, 180_000_000))
def test_a_shown_duration_reads_back_within_its_last_unit(ms: int) -> None:
    seconds = ms / 1000
    shown = units.duration(seconds)
    back = parse_duration(shown)
    # never a whole second unit off: tenths under 10 s, then seconds, minutes, hours
    second_unit = (
        0.051 if seconds < 10 else 0.5 if seconds < 7200 else 60 if seconds < 172800 else 3600
    )
    assert abs(back - seconds) <= second_unit, (seconds, shown)


def test_config_keeps_the_exact_formatter() -> None:
    assert format_duration is units.format_duration and parse_duration is units.parse_duration
    assert parse_duration(format_duration(5430.25)) == 5430.25
