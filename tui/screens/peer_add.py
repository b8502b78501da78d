"""The peer-add wizard: name → address (the next free one suggested, editable) → plan (keys,
`wg set`, conf diff, client config) → confirm → apply (through the runner) → client config and
QR code, with an offer to save the config.

Every step before the confirm is reversible: Esc on the plan goes back to the address, Esc on
the address cancels the plan (audited as "cancelled" by the runner) and goes back to the name;
Esc on the name leaves (nothing was planned, so there is nothing to audit). A changed address is
planned again (the first plan is cancelled); a taken, outside or own address is refused by the
plan and the wizard stays on the address. The client's private key is shown only after the peer
is applied, on this screen, and written only where the user asks (mode 0600).

The QR code is shown only when the whole of it fits the terminal (a cut code does not scan);
otherwise the screen says how large the terminal must be and offers to save the config. What
was saved is said on the hint line, never by a toast over the code.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Footer, Input, Static

from actions.base import Target
from actions.vpn import PeerAdd, save_client_config
from tui.screens.confirm import plan_text
from tui.screens.wizard import WizardScreen

if TYPE_CHECKING:
    from actions.runner import Prepared, RunResult

STEPS = ("name", "address", "plan", "running", "done", "failed")
# Rows the done step needs besides the code: title, hint and footer.
DONE_CHROME_ROWS = 3
DONE_CHROME_COLUMNS = 2  # the wizard's padding

DONE_HINT = "4/4  Done — scan the QR code, or s: save the client file · Esc: close"


def _preview(client: str) -> str:
    """The client config with its private key held back until the peer exists."""
    return "\n".join(
        "PrivateKey = (shown once the peer is added)" if ln.startswith("PrivateKey") else ln
        for ln in client.splitlines()
    )


def _plain_address(address: str) -> str:
    """10.77.0.4/32 → 10.77.0.4 (what the user edits)."""
    try:
        return str(ipaddress.ip_interface(address).ip)
    except ValueError:
        return address


def qr_size(qr: str) -> tuple[int, int]:
    """(columns, rows) a terminal QR code takes."""
    lines = qr.splitlines()
    return max((len(ln) for ln in lines), default=0), len(lines)


class PeerAddScreen(WizardScreen[Any]):
    HELP_NAME = "peer-add wizard"
    FIRST_STEP = "name"
    FOCUS: ClassVar[dict[str, str]] = {"name": "#name", "address": "#address"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back / cancel"),
        Binding("enter", "confirm", "Confirm", show=False),
        Binding("s", "save", "Save client file", show=False),
    ]

    DEFAULT_CSS = """
    PeerAddScreen > #wizard { padding: 0 1; }
    PeerAddScreen #title { text-style: bold; }
    PeerAddScreen #error { color: $error; display: none; }
    PeerAddScreen #error.-shown { display: block; }
    PeerAddScreen #steps { height: 1fr; }
    PeerAddScreen .step { height: auto; }
    PeerAddScreen #plan-body, PeerAddScreen #done-body { height: 1fr; }
    PeerAddScreen #step-plan, PeerAddScreen #step-done { height: 1fr; }
    PeerAddScreen #save-path { display: none; }
    PeerAddScreen #save-path.-shown { display: block; }
    PeerAddScreen #qr { width: auto; }
    """

    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target
        self.prepared: Prepared | None = None
        self.result: RunResult | None = None
        self.saved: Path | None = None
        self.peer_name = ""
        self.qr = ""
        self.qr_shown = False

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Vertical(id="wizard"):
            yield Static(f"Add a WireGuard peer to {self.target}", id="title")
            yield Static(id="error")
            with self.steps():
                with Vertical(id="step-name", classes="step"):
                    yield Static("1/4  Name of the new device (Enter: next · Esc: leave)")
                    yield Input(placeholder="e.g. phone-anna", id="name")
                with Vertical(id="step-address", classes="step"):
                    yield Static(
                        "2/4  Its address — the next free one; edit it if you like "
                        "(Enter: review · Esc: back to the name)",
                        id="address-hint",
                    )
                    yield Input(placeholder="e.g. 10.100.0.7", id="address")
                with Vertical(id="step-plan", classes="step"):
                    yield Static(
                        "3/4  Review — Enter: apply · Esc: back to the address", id="plan-hint"
                    )
                    with VerticalScroll(id="plan-body"):
                        yield Static(id="plan")
                with Vertical(id="step-running", classes="step"):
                    yield Static("applying …", id="running")
                with Vertical(id="step-done", classes="step"):
                    yield Static(DONE_HINT, id="done-hint")
                    with VerticalScroll(id="done-body"):
                        yield Static(id="qr")
                        yield Static(id="client")
                    yield Input(id="save-path")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def step_shown(self, step: str) -> str:
        return "done" if step == "failed" else step  # the done page says why it failed

    def error(self, text: str | None) -> None:
        box = self.query_one("#error", Static)
        box.update(Text(text or ""))
        box.set_class(bool(text), "-shown")

    # ------------------------------------------------------------ step 1: name → a plan

    @on(Input.Submitted, "#name")
    def _name_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.plan_it(event.value, None)

    @work(group="peer-add", exclusive=True, exit_on_error=False)
    async def plan_it(self, name: str, address: str | None) -> None:
        """Plan the peer (the address: None for the next free one) and show the next step."""
        from actions.runner import Refused

        ctx = self.ctx
        if ctx.runner is None or ctx.lab is None:
            self.error("actions are unavailable in this session (no runner)")
            return
        if self.prepared is not None:  # a new address: the plan made for the old one goes
            ctx.runner.cancel(self.prepared)
            self.prepared = None
        params: dict[str, Any] = {"name": name}
        if address is not None:
            params["address"] = address
        try:
            action = PeerAdd.create(self.target, ctx.lab, params)  # checks the name
            prepared = await ctx.runner.prepare(action)
        except (ValueError, Refused) as exc:
            self.error(str(exc))
            return
        self.prepared = prepared
        self.error(None)
        self.peer_name = name
        plan = prepared.plan
        if address is None:
            self.query_one("#address", Input).value = _plain_address(str(plan.data.address))
            self.show_step("address")
            return
        self.show_plan()

    def show_plan(self) -> None:
        if self.prepared is None:
            return
        plan = self.prepared.plan
        text = plan_text(plan)
        if plan.diff:
            text.append("\n\nPersisted conf:\n", "bold")
            text.append(plan.diff)
        text.append("\n\nClient config:\n", "bold")
        text.append(_preview(str(plan.data.client_config)))
        self.query_one("#plan", Static).update(text)
        self.show_step("plan")

    # ------------------------------------------------------------ step 2: the address

    @on(Input.Submitted, "#address")
    def _address_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        wanted = event.value.strip()
        planned = self.prepared.plan.data.address if self.prepared is not None else None
        if planned is not None and wanted == _plain_address(str(planned)):
            self.error(None)
            self.show_plan()
            return
        self.plan_it(self.peer_name, wanted)

    # ------------------------------------------------------------ step 3: confirm → run

    def action_confirm(self) -> None:
        if self.step == "plan":
            self.run_it()

    @work(group="peer-add", exclusive=True, exit_on_error=False)
    async def run_it(self) -> None:
        ctx, prepared = self.ctx, self.prepared
        if prepared is None:
            return  # action_confirm runs only on the plan step, which has one
        self.show_step("running")
        running = self.query_one("#running", Static)

        def progress(fraction: float | None, message: str) -> None:
            running.update(f"applying … {message}")

        try:
            result = await ctx.acting()[1].run(prepared, "yes", progress)
        except Exception as exc:  # Refused (policy changed meanwhile) or worse
            self.error(str(exc))
            self.prepared = None
            self.show_step("name")
            return
        self.result = result
        if not result.ok:
            rb = result.rollback
            state = "rolled back" if rb is not None and rb.ok else "ROLLBACK FAILED"
            self.error(f"{result.outcome.message}\n{state}: {rb.message if rb else ''}")
            self.query_one("#client", Static).update("")
            self.show_step("failed")
            return
        details = result.outcome.details
        self.query_one("#client", Static).update(Text(str(details.get("secret_client_config", ""))))
        self.qr = str(details.get("secret_qr", ""))
        self.query_one("#save-path", Input).value = f"~/{self.target.name}-{details['name']}.conf"
        self.show_step("done")
        self.show_qr()
        if ctx.poller is not None:
            ctx.poller.refresh()

    # ------------------------------------------------------------ step 4: the code, or why not

    def qr_fits(self) -> bool:
        columns, rows = qr_size(self.qr)
        return (
            columns + DONE_CHROME_COLUMNS <= self.size.width
            and rows + DONE_CHROME_ROWS <= self.size.height
        )

    def show_qr(self) -> None:
        """The whole code, or what size the terminal must be and how else to get the config."""
        if self.step != "done" or not self.qr or self.result is None:
            return
        details = self.result.outcome.details
        nix = "\n" + str(details["nix"]) if "nix" in details else ""
        box = self.query_one("#qr", Static)
        self.qr_shown = self.qr_fits()
        if self.qr_shown:
            box.update(Text(self.qr + nix))
        else:
            columns, rows = qr_size(self.qr)
            need_w = columns + DONE_CHROME_COLUMNS
            need_h = rows + DONE_CHROME_ROWS
            box.update(
                Text.assemble(
                    (
                        f"The QR code needs a terminal of at least {need_w}×{need_h} "
                        f"(this one is {self.size.width}×{self.size.height}): enlarge the "
                        "window or zoom out to scan it — or press s to save the client "
                        "config to a file.\n",
                        "bold",
                    ),
                    nix,
                )
            )
        self.query_one("#done-body", VerticalScroll).scroll_home(animate=False)

    def on_resize(self) -> None:
        if self.step == "done":
            self.show_qr()

    def action_save(self) -> None:
        if self.step != "done":
            return
        box = self.query_one("#save-path", Input)
        box.add_class("-shown")
        box.focus()

    @on(Input.Submitted, "#save-path")
    def _save(self, event: Input.Submitted) -> None:
        event.stop()
        if self.result is None:
            return
        client = str(self.result.outcome.details.get("secret_client_config", ""))
        try:
            self.saved = save_client_config(Path(event.value), client)
        except OSError as exc:
            self.error(f"cannot save {event.value}: {exc.strerror or exc}")
            return
        self.error(None)
        event.input.remove_class("-shown")
        # on the hint line, not a toast: a toast would sit over the code
        self.query_one("#done-hint", Static).update(
            Text(f"4/4  Done — saved {self.saved} (mode 0600) · s: save again · Esc: close")
        )
        self.set_focus(None)

    # ------------------------------------------------------------ back / cancel

    def action_back(self) -> None:
        if self.step == "plan":
            self.show_step("address")
        elif self.step == "address":
            if self.prepared is not None:
                self.ctx.acting()[1].cancel(self.prepared)
                self.prepared = None
            self.error(None)
            self.show_step("name")
        elif self.step == "running":
            return  # past the confirm: the runner finishes (or rolls back) first
        else:
            self.dismiss(self.result)
