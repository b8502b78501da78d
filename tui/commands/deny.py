"""`hlcon deny ID --note …`: see tui/commands/approvals.py (a person's side of the queue)."""

from tui.commands.approvals import register_deny as register

__all__ = ["register"]
