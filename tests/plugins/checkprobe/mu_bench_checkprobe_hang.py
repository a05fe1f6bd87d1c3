"""Test plugin whose import never finishes."""

import time

time.sleep(3600)


class Hangs:
    """Never defined in time."""
