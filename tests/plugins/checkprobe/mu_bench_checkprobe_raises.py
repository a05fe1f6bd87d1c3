"""Test plugin whose import raises."""

raise ImportError("probe: a dependency is missing")


class Raises:
    """Never defined."""
