"""Casework: participants a municipality places in work training at an ASF, their cases,
placements, employment and follow-ups.

Where things live:

- `domain.py` — the rules: the stage machine, identity numbers, valid input. Pure.
- `service.py` — the use cases; one transaction each, events to the outbox in it.
- `store.py` — all SQL.
- `api.py` — HTTP routes (thin); `views.py` — what they return.
- `handlers.py` — events in (the registry's company events → the company read model).
- `crypto.py` — personal data at rest (per-participant keys, AES-GCM, keyed hash).
- `stream.py` — `/stream` over PostgreSQL LISTEN/NOTIFY.
- `app.py` — the wiring; `cli.py` — commands; `demo.py` — demo data.

Events out: `asf_contracts.casework`. Personal data never leaves this service.
"""
