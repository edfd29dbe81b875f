"""Test support for ASF Samverkan: a dev-only package, never a dependency of a service.

Import what a test needs from here (`from asf_testing import auth, fresh_database`); the
fixtures `postgres_url`, `broker_url`, `identity_number` and `org_number` come from the
plugin (`asf_testing.plugin`, loaded by the root `conftest.py`).

- `infra`: `fresh_database`, `unique_namespace`, `delete_queues`, `event_tap` / `EventTap`
- `apps`: `serving(app)` — an app's lifespan and an HTTP client on it, queues cleaned up
- `tokens`: `JWT_TEST_SECRET`, `DATA_KEY`, `token`, `auth`; `SigningKey`, `JwksServer`
- `numbers`: `identity_number`, `org_number`, `with_check_digit`
- `smtp`: `SmtpServer` (aiosmtpd in the test process), `text_of`
- `processes`: `free_port`, `service_process`, `wait_ready`, `ServiceProcess`
- `access`: the callers of an access matrix (`VARIANTS`, `allow`, `public`, `everyone`,
  `api_routes`)
- `logs`: `captured_logs`
- `fast`: the fast layer's guards (`pytest -m fast`) and, for handler routing on FastStream's
  in-memory broker, `MemoryInbox`, `consumer_of`, `envelope`, `dead_letters`
"""

from asf_testing.access import ANONYMOUS, VARIANTS, allow, api_routes, everyone, public
from asf_testing.apps import serving
from asf_testing.fast import MemoryInbox, consumer_of, dead_letters, envelope
from asf_testing.infra import (
    EventTap,
    delete_queues,
    event_tap,
    fresh_database,
    unique_namespace,
    with_database,
)
from asf_testing.logs import LogLines, captured_logs
from asf_testing.numbers import identity_number, org_number, with_check_digit
from asf_testing.processes import ServiceProcess, free_port, service_process, wait_ready
from asf_testing.smtp import Recorder, SmtpServer, text_of
from asf_testing.tokens import DATA_KEY, JWT_TEST_SECRET, JwksServer, SigningKey, auth, token
from asf_testing.waiting import eventually

__all__ = [
    "ANONYMOUS",
    "DATA_KEY",
    "JWT_TEST_SECRET",
    "VARIANTS",
    "EventTap",
    "JwksServer",
    "LogLines",
    "MemoryInbox",
    "Recorder",
    "ServiceProcess",
    "SigningKey",
    "SmtpServer",
    "allow",
    "api_routes",
    "auth",
    "captured_logs",
    "consumer_of",
    "dead_letters",
    "delete_queues",
    "envelope",
    "event_tap",
    "eventually",
    "everyone",
    "free_port",
    "fresh_database",
    "identity_number",
    "org_number",
    "public",
    "service_process",
    "serving",
    "text_of",
    "token",
    "unique_namespace",
    "wait_ready",
    "with_check_digit",
    "with_database",
]
