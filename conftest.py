"""Fixtures for every test in the repository: see `asf_kit.testing`."""

pytest_plugins = ["asf_kit.testing"]
