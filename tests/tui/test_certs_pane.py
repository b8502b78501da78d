"""The certs pane against the testbed (Pebble + lego, made certificates): rows with days left,
trust and faults, the detail screen, and R renewing through the real runner and audit log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from actions.runner import Runner
from lab import certs
from lab.config import CertConfig, Config, ConsoleConfig
from lab.model import Cert
from lab.poller import Poller
from lab.wiring import Lab
from tests.testbed.acme import (
    LEGO_DOMAIN,
    AcmeLab,
    BadEndpoints,
    CertServers,
    past_issuing_second,
)
from tests.tui.fixtures import make_context
from tests.tui.waiting import wait_for
from tui.app import HlconApp
from tui.panes.certs import CertDetail, CertsPane
from tui.screens.confirm import ConfirmModal

pytestmark = pytest.mark.testbed
SIZE = (110, 30)


def plain(cells: Any) -> list[str]:
    return [c.plain if isinstance(c, Text) else str(c) for c in cells]


async def console(tmp: Path, *entries: CertConfig) -> HlconApp:
    config = Config(console=ConsoleConfig(state_dir=tmp / "state", timeout=2.0), certs=entries)
    lab = Lab(config)
    ctx = make_context(config=config, runner=Runner(lab), lab=lab)
    await Poller(ctx.store, lab.readers()).poll_all()
    return HlconApp(ctx, initial_pane=6)


async def test_rows_detail_and_renew(
    acme_lab: AcmeLab, cert_servers: CertServers, bad_endpoints: BadEndpoints, tmp_path: Path
) -> None:
    five = cert_servers.cases["5-day"]
    app = await console(
        tmp_path,
        CertConfig(
            name=LEGO_DOMAIN,
            endpoint=acme_lab.endpoint,
            sni=LEGO_DOMAIN,
            renew=acme_lab.renew_command,
            ca_file=acme_lab.root_ca,
        ),
        CertConfig(name="five", file=five.cert_file, ca_file=cert_servers.ca_file, sni="svc.lab"),
        CertConfig(name="down", endpoint=bad_endpoints.refused),
    )
    lab = app.ctx.lab
    assert lab is not None
    before = await certs.reader_for(lab, certs.find(lab, LEGO_DOMAIN)).read()
    assert isinstance(before, Cert)
    await past_issuing_second(before.not_before)
    async with app.run_test(size=SIZE) as pilot:
        pane = app.query_one(CertsPane)
        rows = {r.id: plain(r.cells) for r in pane.filtered_rows()}
        # soonest expiry first, the faulted row last
        assert list(rows) == ["cert:five", f"cert:{LEGO_DOMAIN}", "cert:down"]
        assert rows["cert:five"][1] in ("5d", "4d")  # the pane reads at the lab's (real) clock
        assert rows["cert:five"][3] == "trusted"
        assert rows[f"cert:{LEGO_DOMAIN}"][4].startswith("Pebble Intermediate CA")
        assert rows["cert:down"][:2] == ["down ⚠", "endpoint refused"]

        assert pane.select_row("cert:five")
        await pilot.press("enter")
        assert isinstance(app.screen, CertDetail)
        shown = str(app.screen.query_one("Static").render())
        assert "DNS:*.svc.lab" in shown and "svc.lab is in the SANs" in shown
        await pilot.press("escape")

        assert pane.select_row(f"cert:{LEGO_DOMAIN}")
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmModal), "confirm modal")
        assert f"Renew certificate {LEGO_DOMAIN}" in str(app.screen.query_one("#plan").render())
        await pilot.press("enter")
        assert app.ctx.runner is not None
        audit = app.ctx.runner.audit
        await wait_for(
            pilot, lambda: [r.phase for r in audit.records()][-1:] == ["outcome"], "outcome"
        )
    (outcome,) = [r for r in audit.records() if r.phase == "outcome"]
    assert outcome.result is not None and outcome.result["ok"] is True, outcome.result
    assert outcome.result["details"]["before"]["serial"] == before.serial
    after = await certs.reader_for(lab, certs.find(lab, LEGO_DOMAIN)).read()
    assert isinstance(after, Cert) and after.serial != before.serial
    assert outcome.result["details"]["after"]["serial"] == after.serial
