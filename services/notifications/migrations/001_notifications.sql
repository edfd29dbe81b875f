-- People who may be emailed. Rows with source 'registry' mirror a company's contacts
-- from registry events; the others are managed over HTTP by an analyst.
CREATE TABLE contacts (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    email             text NOT NULL,
    role              text NOT NULL,
    municipality_code text,
    company_id        uuid,
    subject           text,
    locale            text NOT NULL DEFAULT 'sv' CHECK (locale IN ('sv', 'en')),
    source            text NOT NULL DEFAULT 'manual' CHECK (source IN ('manual', 'registry')),
    active            boolean NOT NULL DEFAULT true,
    version           integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_by_created ON contacts (created_at, id);
CREATE INDEX contacts_by_role ON contacts (role) WHERE active;
CREATE INDEX contacts_by_company ON contacts (company_id) WHERE active;
CREATE INDEX contacts_by_subject ON contacts (subject) WHERE active;
CREATE UNIQUE INDEX contacts_registry_mirror ON contacts (company_id, lower(email))
    WHERE source = 'registry';

-- What notifications knows about a company: enough to reach its contacts later.
CREATE TABLE companies (
    id                uuid PRIMARY KEY,
    name              text NOT NULL,
    municipality_code text NOT NULL,
    status            text NOT NULL,
    version           integer NOT NULL,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Jinja2 templates, one row per (name, locale, version); a delivery keeps the version it used.
CREATE TABLE templates (
    name       text NOT NULL,
    locale     text NOT NULL CHECK (locale IN ('sv', 'en')),
    version    integer NOT NULL,
    subject    text NOT NULL,
    text_body  text NOT NULL,
    html_body  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, locale, version)
);

-- The routing table: which event type reaches which contacts, and how.
CREATE TABLE subscriptions (
    id                uuid PRIMARY KEY,
    event_type        text NOT NULL,
    contact_id        uuid REFERENCES contacts (id) ON DELETE CASCADE,
    role              text,
    municipality_code text,
    company_id        uuid,
    mode              text NOT NULL CHECK (mode IN ('immediate', 'daily_digest')),
    template          text NOT NULL,
    version           integer NOT NULL DEFAULT 1,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((contact_id IS NULL) <> (role IS NULL))
);
CREATE INDEX subscriptions_by_event ON subscriptions (event_type);
CREATE INDEX subscriptions_by_created ON subscriptions (created_at, id);

-- One-off seeds already applied (the default routing is seeded once, then editable).
CREATE TABLE seeds (
    name       text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- One email to one contact about one event (or one digest), rendered when stored.
CREATE TABLE deliveries (
    id               uuid PRIMARY KEY,
    event_id         uuid NOT NULL,
    event_type       text NOT NULL,
    contact_id       uuid REFERENCES contacts (id) ON DELETE SET NULL,
    recipient        text,
    template         text NOT NULL,
    template_locale  text,
    template_version integer,
    subject          text NOT NULL DEFAULT '',
    text_body        text NOT NULL DEFAULT '',
    html_body        text NOT NULL DEFAULT '',
    status           text NOT NULL CHECK (status IN
                        ('pending', 'sending', 'sent', 'retrying', 'failed', 'skipped')),
    attempts         integer NOT NULL DEFAULT 0,
    last_error       text,
    message_id       text NOT NULL,
    traceparent      text,
    next_attempt_at  timestamptz,
    sending_since    timestamptz,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, contact_id, template)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status IN ('pending', 'retrying');
CREATE INDEX deliveries_sending ON deliveries (sending_since) WHERE status = 'sending';
CREATE INDEX deliveries_by_created ON deliveries (created_at DESC, id DESC);
CREATE INDEX deliveries_by_contact ON deliveries (contact_id, created_at DESC);

-- Wake the sweeper when a delivery becomes due, at commit.
CREATE FUNCTION deliveries_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('deliveries', '');
    RETURN NULL;
END $$;
CREATE TRIGGER deliveries_notify AFTER INSERT OR UPDATE OF status ON deliveries
    FOR EACH ROW WHEN (NEW.status = 'pending') EXECUTE FUNCTION deliveries_notify();

-- What a daily-digest subscription collected, until a digest run puts it in an email.
CREATE TABLE digest_items (
    id                bigserial PRIMARY KEY,
    subscription_id   uuid NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    contact_id        uuid NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    event_id          uuid NOT NULL,
    event_type        text NOT NULL,
    occurred_at       timestamptz NOT NULL,
    municipality_code text,
    delivery_id       uuid REFERENCES deliveries (id) ON DELETE SET NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, contact_id)
);
CREATE INDEX digest_items_open ON digest_items (occurred_at) WHERE delivery_id IS NULL;
