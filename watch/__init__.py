"""hlcon watch: the one long-running service (notifications, metrics; later approvals, history,
restore drills). A layer between tui and actions: tui -> watch -> actions -> lab."""
