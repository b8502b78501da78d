"""The console script's parser: global options before or after the subcommand."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tui.cli import COMMANDS, build_parser, main


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


@pytest.mark.parametrize("argv", [["status"], ["config", "check"], ["config", "path"]])
def test_an_unknown_user_in_the_config_path_is_a_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*argv, "--config", "~nosuchuser-4f1a/lab.toml"])
    err = capsys.readouterr().err
    assert code in (2, 3)
    assert 'no user "nosuchuser-4f1a" on this machine' in err
    assert "Traceback" not in err


@pytest.mark.timeout(30)  # before the fix: blocked in open() for ever
def test_a_fifo_as_the_config_is_refused_not_waited_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "lab.toml"
    os.mkfifo(fifo)
    assert main(["status", "--config", str(fifo)]) == 3
    assert f"{fifo}: not a regular file (a FIFO)" in capsys.readouterr().err


def test_an_unknown_command_lists_the_commands_and_suggests_the_nearest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["stauts"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert 'unknown command "stauts"; did you mean "status"?' in err
    assert f"commands: {', '.join(COMMANDS)})" in err
    assert "choose from )" not in err


def test_an_unknown_command_without_a_near_one_still_lists_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["frobnicate"])
    err = capsys.readouterr().err
    assert f'unknown command "frobnicate" (commands: {", ".join(COMMANDS)})' in err


def test_an_unknown_action_of_a_command_suggests_the_nearest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["secret", "chek", "env:X"])
    err = capsys.readouterr().err
    assert 'unknown action "chek"; did you mean "check"? (actions: check, set)' in err
