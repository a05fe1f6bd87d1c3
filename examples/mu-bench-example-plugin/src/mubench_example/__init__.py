"""An example mu-bench plugin package."""
