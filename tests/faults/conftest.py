"""The fault tests: `faultrun` (the harness) is importable from the test modules and from
`run.py`; the fault run itself runs only when asked for with `-m faults`, because it restarts
PostgreSQL and RabbitMQ under every other test on the machine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.append(str(Path(__file__).parent))  # for `import faultrun`


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    expression = config.getoption("markexpr") or ""
    if "faults" in expression and "not faults" not in expression:
        return
    skip = pytest.mark.skip(reason="restarts PostgreSQL and RabbitMQ: run it alone with "
                                   "`uv run pytest tests/faults -m faults`")
    for item in items:
        if item.get_closest_marker("faults") is not None:
            item.add_marker(skip)
