"""The notification service: emails the people who need to know about registry and
casework events.

Where things live: `handlers` (events in) → `service.route_event` (subscriptions and
`domain` rules decide who hears what; deliveries stored in the inbox transaction) →
`sender.Sweeper` (SMTP, retries, the daily digest); `api` (contacts, subscriptions,
templates, deliveries); `store` (all SQL); `templates/*.toml` (Swedish and English
Jinja2, seeded into the database as versions); `samples` (payloads for previews);
`mailcatcher` (development SMTP); `app` (the wiring).
"""
