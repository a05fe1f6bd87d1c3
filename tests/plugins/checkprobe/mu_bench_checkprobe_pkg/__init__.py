"""Test plugin package: `mu-bench methods` reads its method's summary from source,
without running this file (the test looks for it in `sys.modules`)."""
