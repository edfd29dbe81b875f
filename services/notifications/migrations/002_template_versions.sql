-- Templates change without a release: a version is one template in all its locales, made by
-- a release (the packaged files) or by an analyst over HTTP, and used only once activated.
CREATE TABLE template_versions (
    name       text NOT NULL,
    version    integer NOT NULL CHECK (version >= 1),
    source     text NOT NULL CHECK (source IN ('release', 'analyst')),
    created_by text,
    note       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- Until now a version was counted per (name, locale). Each version number a template has
-- becomes a version of the whole template; a locale that did not change in it keeps the
-- text of its previous version.
INSERT INTO template_versions (name, version, source, created_at)
SELECT name, version, 'release', min(created_at) FROM templates GROUP BY name, version;

INSERT INTO templates (name, locale, version, subject, text_body, html_body, created_at)
SELECT v.name, l.locale, v.version, prev.subject, prev.text_body, prev.html_body, v.created_at
FROM template_versions v
JOIN (SELECT DISTINCT name, locale FROM templates) l ON l.name = v.name
CROSS JOIN LATERAL (
    SELECT t.subject, t.text_body, t.html_body FROM templates t
    WHERE t.name = v.name AND t.locale = l.locale AND t.version < v.version
    ORDER BY t.version DESC LIMIT 1
) prev
WHERE NOT EXISTS (SELECT 1 FROM templates x
                  WHERE x.name = v.name AND x.locale = l.locale AND x.version = v.version);

ALTER TABLE templates ADD FOREIGN KEY (name, version) REFERENCES template_versions (name, version);

-- Which version is in use: the newest activation of each template. Rolling back is
-- activating an earlier version; the history says who switched what, when.
CREATE TABLE template_activations (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    version      integer NOT NULL,
    activated_by text,
    activated_at timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (name, version) REFERENCES template_versions (name, version)
);
CREATE INDEX template_activations_newest ON template_activations (name, id DESC);

INSERT INTO template_activations (name, version)
SELECT name, max(version) FROM template_versions GROUP BY name;

-- The submitter of a learning example, mirrored from the registry's event (like a
-- company's contacts) so the decision reaches them once, and an analyst can stop it.
ALTER TABLE contacts DROP CONSTRAINT contacts_source_check;
ALTER TABLE contacts ADD CONSTRAINT contacts_source_check
    CHECK (source IN ('manual', 'registry', 'submitter'));
CREATE UNIQUE INDEX contacts_submitter_mirror ON contacts (lower(email))
    WHERE source = 'submitter';
