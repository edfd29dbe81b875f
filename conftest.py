"""Fixtures for every test in the repository: see `asf_testing` (a dev-only package)."""

# pytester: the fast layer's guards are tried in pytest runs of their own
# (testsupport/tests/test_fast_layer.py).
pytest_plugins = ["asf_testing.plugin", "pytester"]
