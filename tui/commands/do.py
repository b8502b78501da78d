"""`hlcon do VERB TARGET`: the headless twin of an action key.

Plans, shows the plan, asks (or takes --yes / --confirm), runs through the runner. `--yes`
answers an Enter-level confirmation only; a typed one (a stop, a removal, an overwrite or
in-place restore, a bulk action) is answered only by naming what it destroys: `--confirm NAME`
(the count for a bulk action) — so one generic flag in a script never wipes data. Exit codes: 0
done and verified, 1 failed (the message says whether it was rolled back), 2 refused or bad
usage, 130 cancelled (Ctrl-C; SIGTERM and SIGHUP end a run the same way, audited, exit 143 and
129).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shlex
import signal
import sys
import threading
from dataclasses import dataclass
from typing import Any

from actions import registry
from actions.base import Confirmation, Plan
from actions.policy import human_duration
from actions.runner import Refused, Runner
from lab import config as lab_config
from lab.config import Config
from lab.wiring import Lab
from tui import interrupt

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_CANCELLED = 0, 1, 2, 130


def load_config(args: argparse.Namespace) -> Config:
    """The config named by --config (or $HLCON_CONFIG, XDG, the embedded default)."""
    return lab_config.load_config(args.config)


def config_or_exit(args: argparse.Namespace, command: str) -> Config | int:
    try:
        return load_config(args)
    except Exception as exc:  # the loader's errors name file, line and key
        print(f"hlcon {command}: {exc}", file=sys.stderr)
        return EXIT_REFUSED


def register(sub: Any) -> None:
    p = sub.add_parser(
        "do",
        help="run an action: plan, confirm, lock, audit, execute, verify",
        description="Run one action on one target through the action layer.",
    )
    p.add_argument("verb", help="restart, start, stop, restore, peer-add, renew …")
    p.add_argument("target", help="KIND:NAME[@WHERE], e.g. container:web@local")
    p.add_argument("--dry-run", action="store_true", help="show the plan and stop")
    p.add_argument(
        "--yes",
        "-y",
        action="store_true",
        help="answer an Enter-level confirmation (a restart, a start …); never a typed one",
    )
    p.add_argument(
        "--confirm",
        metavar="NAME",
        help="answer a typed confirmation by naming what it destroys (the count for a bulk "
        "action); the plan says what to type",
    )
    p.add_argument("--name", help="a name (peer add …)")
    p.add_argument("--snapshot", help="a snapshot id (restore)")
    p.add_argument(
        "--include", action="append", metavar="PATH", help="a path to include (repeatable)"
    )
    p.add_argument("--target", dest="target_dir", metavar="DIR", help="where to restore to")
    p.add_argument("--in-place", action="store_true", help="restore over the original paths")
    p.add_argument(
        "--param", action="append", metavar="KEY=VALUE", default=[], help="any other parameter"
    )
    p.set_defaults(func=run_do)


def params_from(args: argparse.Namespace) -> dict[str, Any]:
    """The parameters Action.create receives: only the options that were given."""
    params: dict[str, Any] = {}
    for key, value in (
        ("name", args.name),
        ("snapshot", args.snapshot),
        ("include", args.include),
        ("target", args.target_dir),
    ):
        if value is not None:
            params[key] = value
    if args.in_place:
        params["in_place"] = True
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param {item!r}: expected KEY=VALUE")
        params[key.strip()] = value
    return params


def render_plan(plan: Plan) -> str:
    lines = [plan.summary]
    lines.append(f"  target:       {plan.target}  ({plan.family})")
    lines.append(
        f"  blast radius: {plan.blast_radius.value}    "
        f"reversible: {'yes' if plan.reversible else 'no'}"
    )
    if plan.cost:
        lines.append(f"  cost:         {plan.cost}")
    if plan.timeout is not None:
        lines.append(
            f"  timeout:      times out after {human_duration(plan.timeout)} ({plan.timeout_from})"
        )
    lines.append("  steps:")
    for i, step in enumerate(plan.steps, 1):
        lines.append(f"    {i}. {step.description}  (on {step.host})")
        if step.argv is not None:
            lines.append(f"       $ {shlex.join(step.argv)}")
        for path in step.changes:
            lines.append(f"       changes {path}")
    if plan.diff:
        lines.append("  diff:")
        lines.extend(f"    {ln}" for ln in plan.diff.rstrip("\n").splitlines())
    for note in plan.notes:
        lines.append(f"  ! {note}")
    return "\n".join(lines)


def _progress(fraction: float | None, message: str) -> None:
    mark = f"{fraction * 100:3.0f}%" if fraction is not None else "   …"
    print(f"  [{mark}] {message}", file=sys.stderr, flush=True)


def _ask(prompt: str) -> str | None:
    print(prompt, end="", file=sys.stderr, flush=True)
    line = sys.stdin.readline()
    return None if line == "" else line.rstrip("\n")


async def _ask_async(prompt: str) -> str | None:
    """The prompt in a daemon thread: Ctrl-C cancels the wait at once (asyncio.to_thread's
    executor would hold the process until the user pressed Enter)."""
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[str | None] = loop.create_future()

    def settle(value: str | None, error: BaseException | None) -> None:
        if answer.done():
            return
        if error is not None:
            answer.set_exception(error)
        else:
            answer.set_result(value)

    def ask() -> None:
        try:
            value = _ask(prompt)
        except Exception as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=ask, name="hlcon-prompt", daemon=True).start()
    return await answer


@dataclass(frozen=True)
class _Refusal:
    reason: str


def _flag_for(confirmation: Confirmation) -> str:
    """The exact flag that answers this confirmation."""
    if confirmation.expect is None:
        return "--yes"
    return f"--confirm {shlex.quote(confirmation.expect)}"


def _given_answer(args: argparse.Namespace, confirmation: Confirmation) -> str | _Refusal | None:
    """The answer the flags give: a string, a refusal (a flag that does not answer this
    confirmation), or None (no flag: ask on the terminal)."""
    confirm: str | None = args.confirm
    if confirmation.expect is None:
        return "y" if args.yes or confirm is not None else None
    if confirm is None:
        if not args.yes:
            return None
        return _Refusal(
            f"--yes answers Enter-level confirmations only; this one ({confirmation.prompt}) is "
            f"answered by naming what it destroys: add {_flag_for(confirmation)}"
        )
    if confirm.strip() != confirmation.expect:
        return _Refusal(
            f"--confirm {shlex.quote(confirm)} does not match: {confirmation.prompt} — add "
            f"{_flag_for(confirmation)}"
        )
    return confirm.strip()


def run_do(args: argparse.Namespace) -> int:
    config = config_or_exit(args, "do")
    if isinstance(config, int):
        return config
    try:
        return asyncio.run(_do(args, config))
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, SIGTERM, SIGHUP
        with contextlib.suppress(OSError):  # SIGHUP: the terminal may be gone
            print(
                f"hlcon do: {interrupt.describe()}; cancelled "
                "(anything started was rolled back where possible)",
                file=sys.stderr,
            )
        return interrupt.exit_code() if interrupt.received else EXIT_CANCELLED


async def _do(args: argparse.Namespace, config: Config) -> int:
    lab = Lab(config)
    main = asyncio.current_task()

    def on_signal(sig: signal.Signals) -> None:
        # Like Ctrl-C: the run is cancelled, audits its outcome and rollback, then hlcon ends.
        if main is not None:
            main.cancel(interrupt.describe(sig))

    try:
        with interrupt.routed(asyncio.get_running_loop(), on_signal):
            return await _do_in(args, lab)
    finally:
        await lab.close()


async def _do_in(args: argparse.Namespace, lab: Lab) -> int:
    err = sys.stderr
    try:
        action = registry.build(args.verb, args.target, lab, params_from(args))
    except ValueError as exc:
        print(f"hlcon do: {exc}", file=err)
        return EXIT_REFUSED
    runner = Runner(lab, read_only=args.read_only or None)
    try:
        prepared = await runner.prepare(action, dry_run=args.dry_run)
    except Refused as exc:
        print(f"refused: {exc}", file=err)
        return EXIT_REFUSED
    plan = prepared.plan
    print(render_plan(plan), flush=True)
    if args.dry_run:
        print("dry run: nothing was changed", flush=True)
        return EXIT_OK
    confirmation = plan.confirmation
    answer: str | None
    given = _given_answer(args, confirmation)
    if isinstance(given, _Refusal):
        print(f"refused: {runner.refuse(prepared, given.reason)}", file=err)
        return EXIT_REFUSED
    if given is not None:
        answer = given
    elif not sys.stdin.isatty():
        flag = _flag_for(confirmation)
        refusal = runner.refuse(
            prepared, f"stdin is not a terminal and {flag.split()[0]} was not given"
        )
        print(f"refused: {refusal} (add {flag} to confirm non-interactively)", file=err)
        return EXIT_REFUSED
    else:
        typed = confirmation.expect is not None
        question = f"Type '{confirmation.expect}' to confirm: " if typed else "Proceed? [y/N] "
        try:
            reply = await _ask_async(f"{confirmation.prompt}\n{question}")
        except asyncio.CancelledError:
            runner.cancel(prepared, "interrupted at the prompt")
            raise
        declined = (
            reply is None
            or not reply.strip()
            or (not typed and reply.strip().lower() not in ("y", "yes"))
        )
        if declined:
            runner.cancel(prepared)
            print("cancelled: nothing was changed", file=err)
            return EXIT_CANCELLED
        answer = reply
    try:
        result = await runner.run(prepared, answer, _progress)
    except Refused as exc:
        print(f"refused: {exc}", file=err)
        return EXIT_REFUSED
    if result.ok:
        print(f"done: {result.outcome.message}", flush=True)
        # details["print"] names details to show verbatim (peer-add: client config, QR); the
        # audit masks those whose key names a secret, so only this terminal sees them
        for key in result.outcome.details.get("print", ()):
            print(str(result.outcome.details.get(key, "")), flush=True)
        return EXIT_OK
    print(f"failed: {result.outcome.message}", file=err)
    if result.rollback is None:
        print("rollback: none — nothing was changed", file=err)
    elif result.rollback.ok:
        print(f"rolled back: {result.rollback.message}", file=err)
    else:
        print(f"rollback FAILED: {result.rollback.message}", file=err)
    return EXIT_FAILED
