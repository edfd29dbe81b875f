# ASF Samverkan — the two commands a newcomer needs:
#   make run    set up and run the whole stack with demo data (foreground; Ctrl-C stops it)
#   make test   set up and run the whole test suite, with ruff and mypy
# and, while changing a rule: make test-fast (the fast layer alone: seconds, no servers)
export UV_PYTHON_DOWNLOADS := never
UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)

.PHONY: run test test-fast new-service install lint typecheck pytest faults-full services bench clean images openapi \
	test-containers screenshots chromium

# uv itself: pip install --user, or the wheel from PyPI where there is no pip (deploy/get_uv.py).
$(UV):
	@python3 deploy/get_uv.py >/dev/null

install: $(UV)
	$(UV) sync --frozen

# PostgreSQL and RabbitMQ: found, started, run as containers, or installed with apt, in that
# order of preference (deploy/ensure_services.py); reused on the next run.
services:
	@python3 deploy/ensure_services.py

run: services install
	$(UV) run python deploy/run_local.py

lint: install
	$(UV) run ruff check .

typecheck: install
	$(UV) run mypy

# The fault run restarts PostgreSQL and RabbitMQ, so it runs alone, after everything else.
pytest: install services
	$(UV) run pytest
	$(UV) run pytest tests/faults -m faults -s

faults-full: install services
	$(UV) run python tests/faults/run.py --changes 5000 --smtp-outage 30

# The web app's browser tests drive Debian's chromium; installed here when missing (as root,
# with apt), otherwise those tests are skipped with the reason.
chromium:
	@test -x /usr/bin/chromium || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends chromium; } || \
	  echo "chromium is not installed: the web app's browser tests will be skipped"

test: services install chromium lint typecheck pytest

# The fast layer alone: the tests marked `fast` (domain and service rules, handler routing on
# FastStream's in-memory broker), which may not reach PostgreSQL, RabbitMQ or the network
# (asf_testing.plugin fails one that tries). An extra for the edit-test loop: `make test` runs
# them too, with everything else. Bytecode is cached even where PYTHONDONTWRITEBYTECODE is set,
# and pytest's schemathesis and hypothesis plugins (for tests/hostile) stay unloaded.
test-fast: install
	PYTHONDONTWRITEBYTECODE= $(UV) run pytest -m fast -q -p no:schemathesis -p no:hypothesispytest

# The services' OpenAPI documents into contracts/openapi/ (tests/contract fails when they have
# drifted, or break the released ones in contracts/openapi/released/).
openapi: install
	$(UV) run python -m asf_testing.openapi

# The main pages of the web app as PNG files in docs/screenshots/ (needs Debian's chromium).
screenshots: install services
	$(UV) run python services/web/screenshots.py

# Every service's image, with podman or docker (a base image is made locally where none can be
# pulled): deploy/containers.py.
images:
	python3 deploy/containers.py images

# The suite with its own PostgreSQL and RabbitMQ in containers (testcontainers), this machine's
# ignored: images upstream or made here. PYTEST_ARGS picks tests (default: all but the faults).
test-containers: install
	@eval "$$(python3 deploy/containers.py test-env)" && $(UV) run pytest $(PYTEST_ARGS); \
	status=$$?; python3 deploy/containers.py stop-api; exit $$status

# A new service in the one shape, entered in pyproject, compose and Kubernetes (a unit of its
# own), with a health test: make new-service NAME=billing [PORT=8004] (scaffold/new_service.py,
# scaffold/template/).
new-service: install
	@test -n "$(NAME)" || { echo "usage: make new-service NAME=<name> [PORT=<port>]" >&2; exit 2; }
	$(UV) run python scaffold/new_service.py $(NAME) $(if $(PORT),--port $(PORT))
	$(UV) lock
	$(UV) sync

bench: install services
	$(UV) run python bench/run.py

clean:
	rm -rf .venv var .pytest_cache .mypy_cache .ruff_cache
