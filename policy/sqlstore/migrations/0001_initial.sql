-- Migration 1: the schema that Open created before schema versions were
-- recorded. Every statement is idempotent, so that applying it to a
-- database made by that code changes nothing but records version 1.
-- {{schema}} is the store's schema, a quoted SQL identifier.
CREATE TABLE IF NOT EXISTS {{schema}}.sda_meta (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL);
INSERT INTO {{schema}}.sda_meta (id, seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS {{schema}}.sda_records (
	kind text NOT NULL,
	id text NOT NULL,
	seq bigint NOT NULL,
	deleted boolean NOT NULL,
	body jsonb,
	uniq text,
	PRIMARY KEY (kind, id));
CREATE INDEX IF NOT EXISTS sda_records_seq ON {{schema}}.sda_records (seq);
CREATE UNIQUE INDEX IF NOT EXISTS sda_records_uniq ON {{schema}}.sda_records (kind, uniq) WHERE NOT deleted AND uniq IS NOT NULL;
CREATE TABLE IF NOT EXISTS {{schema}}.sda_issued (
	cti text COLLATE "C" PRIMARY KEY, -- bytewise: the listing's order is Go's
	token_hash text NOT NULL,
	revocation_hash text NOT NULL,
	subject text NOT NULL,
	aud text[] NOT NULL,
	anchor text NOT NULL,
	issued_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	body jsonb NOT NULL);
CREATE INDEX IF NOT EXISTS sda_issued_expiry ON {{schema}}.sda_issued (expires_at);
CREATE INDEX IF NOT EXISTS sda_issued_token_hash ON {{schema}}.sda_issued (token_hash);
CREATE INDEX IF NOT EXISTS sda_issued_revocation_hash ON {{schema}}.sda_issued (revocation_hash);
CREATE INDEX IF NOT EXISTS sda_issued_subject ON {{schema}}.sda_issued (subject, cti);
CREATE INDEX IF NOT EXISTS sda_issued_aud ON {{schema}}.sda_issued USING gin (aud);
