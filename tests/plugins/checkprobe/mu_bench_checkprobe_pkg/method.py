"""A method inside a package (test plugin)."""

from mu_bench.api import Method


class InPackage(Method):
    """Lives in a package whose __init__ the listing must not run."""
