"""`hlcon approve ID`: see tui/commands/approvals.py (a person's side of the approval queue)."""

from tui.commands.approvals import register_approve as register

__all__ = ["register"]
