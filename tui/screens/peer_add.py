"""The peer-add wizard: name → plan (address, keys, `wg set`, conf diff, client config) →
confirm → apply (through the runner) → client config + QR code, with an offer to save it.

Every step before the confirm is reversible: Esc on the plan cancels it (audited as
"cancelled" by the runner) and goes back to the name; Esc on the name leaves (nothing was
planned, so there is nothing to audit). The client's private key is shown only after the
peer is applied, on this screen, and written only where the user asks (mode 0600).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from actions.base import Target
from actions.vpn import PeerAdd, check_name, save_client_config
from tui.screens.confirm import plan_text

STEPS = ("name", "plan", "running", "done", "failed")


def _preview(client: str) -> str:
    """The client config with its private key held back until the peer exists."""
    return "\n".join(
        "PrivateKey = (shown once the peer is added)" if ln.startswith("PrivateKey") else ln
        for ln in client.splitlines()
    )


class PeerAddScreen(Screen[Any]):
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
    PeerAddScreen .step { display: none; height: auto; }
    PeerAddScreen .step.-active { display: block; }
    PeerAddScreen #plan-body, PeerAddScreen #done-body { height: 1fr; }
    PeerAddScreen #step-plan.-active, PeerAddScreen #step-done.-active { height: 1fr; }
    PeerAddScreen #save-path { display: none; }
    PeerAddScreen #save-path.-shown { display: block; }
    """

    def __init__(self, target: Target) -> None:
        super().__init__()
        self.target = target
        self.step = "name"
        self.prepared: Any = None
        self.result: Any = None
        self.saved: Path | None = None

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Vertical(id="wizard"):
            yield Static(f"Add a WireGuard peer to {self.target}", id="title")
            yield Static(id="error")
            with Vertical(id="step-name", classes="step -active"):
                yield Static("1/3  Name of the new device (Enter: plan it · Esc: leave)")
                yield Input(placeholder="e.g. phone-anna", id="name")
            with Vertical(id="step-plan", classes="step"):
                yield Static(
                    "2/3  Review — Enter: apply · Esc: cancel and change the name", id="plan-hint"
                )
                with VerticalScroll(id="plan-body"):
                    yield Static(id="plan")
            with Vertical(id="step-running", classes="step"):
                yield Static("applying …", id="running")
            with Vertical(id="step-done", classes="step"):
                yield Static(
                    "3/3  Done — scan the QR code, or s: save the client file · Esc: close",
                    id="done-hint",
                )
                with VerticalScroll(id="done-body"):
                    yield Static(id="client")
                    yield Static(id="qr")
                yield Input(id="save-path")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()

    def show_step(self, step: str) -> None:
        self.step = step
        for name in ("name", "plan", "running", "done"):
            shown = name == step or (name == "done" and step == "failed")
            self.query_one(f"#step-{name}").set_class(shown, "-active")
        if step == "name":
            self.query_one("#name", Input).focus()
        else:
            self.set_focus(None)

    def error(self, text: str | None) -> None:
        box = self.query_one("#error", Static)
        box.update(Text(text or ""))
        box.set_class(bool(text), "-shown")

    # ------------------------------------------------------------ step 1: name → plan

    @on(Input.Submitted, "#name")
    def _name_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.plan_it(event.value)

    @work(group="peer-add", exclusive=True, exit_on_error=False)
    async def plan_it(self, name: str) -> None:
        from actions.runner import Refused

        ctx = self.app.ctx  # type: ignore[attr-defined]
        if ctx.runner is None or ctx.lab is None:
            self.error("actions are unavailable in this session (no runner)")
            return
        try:
            action = PeerAdd.create(self.target, ctx.lab, {"name": check_name(name)})
            self.prepared = await ctx.runner.prepare(action)
        except (ValueError, Refused) as exc:
            self.error(str(exc))
            return
        self.error(None)
        plan = self.prepared.plan
        text = plan_text(plan)
        if plan.diff:
            text.append("\n\nPersisted conf:\n", "bold")
            text.append(plan.diff)
        text.append("\n\nClient config:\n", "bold")
        text.append(_preview(str(plan.data["client_config"])))
        self.query_one("#plan", Static).update(text)
        self.show_step("plan")

    # ------------------------------------------------------------ step 2: confirm → run

    def action_confirm(self) -> None:
        if self.step == "plan":
            self.run_it()

    @work(group="peer-add", exclusive=True, exit_on_error=False)
    async def run_it(self) -> None:
        ctx = self.app.ctx  # type: ignore[attr-defined]
        self.show_step("running")
        running = self.query_one("#running", Static)

        def progress(fraction: float | None, message: str) -> None:
            running.update(f"applying … {message}")

        try:
            self.result = await ctx.runner.run(self.prepared, "yes", progress)
        except Exception as exc:  # Refused (policy changed meanwhile) or worse
            self.error(str(exc))
            self.show_step("name")
            return
        result = self.result
        if not result.ok:
            rb = result.rollback
            state = "rolled back" if rb is not None and rb.ok else "ROLLBACK FAILED"
            self.error(f"{result.outcome.message}\n{state}: {rb.message if rb else ''}")
            self.query_one("#client", Static).update("")
            self.show_step("failed")
            return
        details = result.outcome.details
        self.query_one("#client", Static).update(Text(str(details.get("secret_client_config", ""))))
        qr = str(details.get("secret_qr", ""))
        if "nix" in details:
            qr += "\n" + str(details["nix"])
        self.query_one("#qr", Static).update(Text(qr))
        self.query_one("#save-path", Input).value = f"~/{self.target.name}-{details['name']}.conf"
        self.show_step("done")
        if ctx.poller is not None:
            ctx.poller.refresh()

    # ------------------------------------------------------------ step 3: save

    def action_save(self) -> None:
        if self.step != "done":
            return
        box = self.query_one("#save-path", Input)
        box.add_class("-shown")
        box.focus()

    @on(Input.Submitted, "#save-path")
    def _save(self, event: Input.Submitted) -> None:
        event.stop()
        client = str(self.result.outcome.details.get("secret_client_config", ""))
        try:
            self.saved = save_client_config(Path(event.value), client)
        except OSError as exc:
            self.error(f"cannot save {event.value}: {exc.strerror or exc}")
            return
        self.error(None)
        event.input.remove_class("-shown")
        self.notify(f"saved {self.saved} (mode 0600)", markup=False)
        self.set_focus(None)

    # ------------------------------------------------------------ back / cancel

    def action_back(self) -> None:
        if self.step == "plan":
            self.app.ctx.runner.cancel(self.prepared)  # type: ignore[attr-defined]
            self.prepared = None
            self.show_step("name")
        elif self.step == "running":
            return  # past the confirm: the runner finishes (or rolls back) first
        else:
            self.dismiss(self.result)
