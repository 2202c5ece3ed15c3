-- The data plane's tokens: each lets an application reach one hosted
-- database over HTTP with one scope. Times are Unix milliseconds, UTC.
CREATE TABLE db_tokens (
	id           TEXT PRIMARY KEY,
	-- a database's tokens go with it
	database_id  TEXT NOT NULL REFERENCES databases (id) ON DELETE CASCADE,
	name         TEXT NOT NULL,
	scope        TEXT NOT NULL CHECK (scope IN ('read-write', 'read-only')),
	-- hex SHA-256 of the token; the token itself is shown once and never kept
	token_hash   TEXT NOT NULL UNIQUE,
	created_by   TEXT NOT NULL,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER NOT NULL DEFAULT 0,
	revoked_at   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX db_tokens_database ON db_tokens (database_id, created_at DESC);
