"""The console script's parser: global options before or after the subcommand."""

from __future__ import annotations

from pathlib import Path

import pytest

from tui.cli import build_parser, main


@pytest.mark.parametrize(
    "argv",
    [
        ["--config", "a.toml", "status"],
        ["status", "--config", "a.toml"],
        ["audit", "tail", "-n", "3", "--config", "a.toml"],
        ["--config", "a.toml", "do", "restart", "container:x@local", "--dry-run"],
    ],
)
def test_config_before_or_after_the_subcommand(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)
    assert args.config == Path("a.toml")


def test_read_only_after_the_subcommand() -> None:
    assert build_parser().parse_args(["do", "restart", "container:x", "--read-only"]).read_only


def test_status_exit_code_for_a_broken_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "lab.toml"
    bad.write_text("[console]\nrefresh = 5\n")
    assert main(["status", "--config", str(bad)]) == 3  # Nagios UNKNOWN: nothing could be read
    err = capsys.readouterr().err
    assert "lab.toml:2: console.refresh" in err
