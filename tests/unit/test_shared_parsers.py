"""One parser per tool output, beside the reader (lab.hosts), used by the actions too: the
restore's free-space probe reads `df` and the service actions' verify reads `systemctl show`
through the hosts reader's parsers."""

from __future__ import annotations

from pathlib import Path

import pytest

from actions import backups, services
from lab.hosts import parse_df, parse_systemctl_show, parse_unit_properties, systemctl_show_blocks

DATA = Path(__file__).resolve().parents[1] / "data" / "hosts"

# `df -P -B1 /tmp` on this machine (GNU coreutils 9.1)
DF_B1 = """\
Filesystem         1-blocks        Used   Available Capacity Mounted on
/dev/vda       270553174016 25643130880 83301163008      24% /
"""


def test_df_in_bytes_reads_through_the_hosts_parser() -> None:
    (fs,) = parse_df(DF_B1, block_size=1)
    assert (fs.mount, fs.size, fs.used, fs.available) == (
        "/",
        270553174016,
        25643130880,
        83301163008,
    )
    assert backups._df_available(DF_B1) == 83301163008


def test_restore_free_space_of_a_device_and_mount_with_spaces() -> None:
    # the restore probe's own parser took the 4th field: here 200, what is used, not free
    text = (
        "Filesystem 1-blocks Used Available Capacity Mounted on\n"
        "//nas/backup share 1000 200 800 20% /mnt/my backups\n"
    )
    assert backups._df_available(text) == 800


def test_restore_free_space_refuses_what_is_not_df() -> None:
    with pytest.raises(ValueError, match="df"):
        backups._df_available("Filesystem 1-blocks Used Available Capacity Mounted on\n")
    with pytest.raises(ValueError, match="df"):
        backups._df_available("df: /nowhere: No such file or directory\n")


def test_one_systemctl_show_parser_for_reader_and_verify() -> None:
    text = (DATA / "debian12-systemd.show").read_text()
    blocks = systemctl_show_blocks(text)
    assert [b["Id"] for b in blocks] == [u.name for u in parse_systemctl_show(text)]
    one = (
        "Id=nginx.service\nLoadState=loaded\nActiveState=active\nSubState=running\n"
        "MainPID=812\nInvocationID=0f3c5e2a9d0b4c61a2b7e8f9d0c1b2a3\n"
    )
    assert services.parse_show(one) == parse_unit_properties(one) == systemctl_show_blocks(one)[0]
    assert services.parse_show(one)["InvocationID"] == "0f3c5e2a9d0b4c61a2b7e8f9d0c1b2a3"


@pytest.mark.parametrize(
    "text",
    ["", "Id=nginx.service\nSubState=dead\n", "Failed to connect to bus: Host is down\n"],
)
def test_verify_refuses_what_is_not_one_unit(text: str) -> None:
    with pytest.raises(ValueError, match="systemctl show"):
        services.parse_show(text)
