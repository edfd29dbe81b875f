"""Fixtures for every test in the repository: see `asf_testing` (a dev-only package)."""

pytest_plugins = ["asf_testing.plugin"]
