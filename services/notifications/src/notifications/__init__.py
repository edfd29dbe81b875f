"""The notification service: emails the people who need to know about registry and
casework events.

Where things live: `handlers` (events in) → `service.Notifications.route_event` (`routing`
decides who hears what and what each may read; deliveries stored in the inbox transaction)
→ `sender.Sweeper` (SMTP, one connection per batch, retries, the daily digest); `api`
(contacts, subscriptions, template versions, deliveries); `domain` (contacts, the routing
table, deliveries, backoff, digest); `mail_templates` (the Jinja2 sandbox, template
versions); `store` (all SQL); `templates/*.toml` (Swedish and English Jinja2, stored as
versions by each release); `samples` (payloads for checks and previews); `mailcatcher`
(development SMTP); `app` (the wiring).
"""
