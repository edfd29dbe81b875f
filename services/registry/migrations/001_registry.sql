CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- A company in the register. Declared fields that are read whole live in jsonb;
-- what lists filter and sort on has its own column and index.
CREATE TABLE companies (
    id                  uuid PRIMARY KEY,
    org_number          text NOT NULL UNIQUE,
    name                text NOT NULL,
    municipality_code   text NOT NULL,
    county_code         text NOT NULL,
    industries          text[] NOT NULL,
    status              text NOT NULL CHECK (status IN ('pending', 'active', 'rejected', 'deregistered')),
    training_places     integer NOT NULL,
    employees_total     integer NOT NULL,
    document            jsonb NOT NULL,
    version             integer NOT NULL,
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE INDEX companies_by_name ON companies (name, id);
CREATE INDEX companies_by_status ON companies (status, name, id);
CREATE INDEX companies_by_municipality ON companies (municipality_code, name, id);
CREATE INDEX companies_by_county ON companies (county_code, name, id);
CREATE INDEX companies_industries ON companies USING gin (industries);
CREATE INDEX companies_name_trgm ON companies USING gin (name gin_trgm_ops);

CREATE TABLE contracts (
    id                    uuid PRIMARY KEY,
    company_id            uuid NOT NULL REFERENCES companies (id),
    municipality_code     text NOT NULL,
    reserved              boolean NOT NULL,
    document              jsonb NOT NULL,
    created_at            timestamptz NOT NULL
);
CREATE INDEX contracts_by_created ON contracts (created_at, id);
CREATE INDEX contracts_by_company ON contracts (company_id, created_at, id);

CREATE TABLE learning_examples (
    id                uuid PRIMARY KEY,
    municipality_code text NOT NULL,
    document          jsonb NOT NULL,
    created_at        timestamptz NOT NULL
);
CREATE INDEX learning_examples_by_created ON learning_examples (created_at, id);
