"""Test plugin whose import ends its process at once, without a word."""

import os

os._exit(0)


class Exits:
    """Never defined."""
