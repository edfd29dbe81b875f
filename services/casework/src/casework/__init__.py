"""Casework: participants a municipality places in work training at an ASF, their cases,
placements, employment and follow-ups.

Where things live:

- `domain.py` — the rules: the `Participant` aggregate (stages, placements and training
  places, employment, follow-ups, notes, erasure) and casework's copy of the companies.
  Pure; each decision records the events it causes.
- `inputs.py` — what callers send, validated (identity numbers, request bodies).
- `timeline.py`, `outcomes.py` — a case's timeline and the outcome figures, pure functions.
- `service.py` — the use cases: load, decide, save in one unit of work.
- `store.py` — all SQL; loads and saves domain objects.
- `api.py` — HTTP routes (thin); `views.py` — what they return besides domain parts.
- `handlers.py` — events in (the registry's company events → the company read model).
- `crypto.py` — personal data at rest (per-participant keys, AES-GCM, keyed hash).
- `stream.py` — `/stream` over PostgreSQL LISTEN/NOTIFY.
- `app.py` — the wiring; `cli.py` — commands; `demo.py` — demo data.

Events out: `asf_contracts.casework`. Personal data never leaves this service.
"""
