"""hlcon's read side: the homelab as hlcon sees it. Reads, never changes."""

__version__ = "0.1.0"
