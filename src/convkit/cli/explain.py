"""``convkit explain``: being written."""


def register(subparsers) -> None:
    """Add the sub-command (not yet written)."""
