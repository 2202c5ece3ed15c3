-- The Aura-compatible API: API keys, and per-database credentials and the
-- placement an API client asked for. Times are Unix milliseconds, UTC.
CREATE TABLE api_keys (
	id           INTEGER PRIMARY KEY,
	client_id    TEXT NOT NULL UNIQUE,
	-- hex SHA-256 of the secret; the secret itself is shown once and never kept
	secret_hash  TEXT NOT NULL,
	name         TEXT NOT NULL,
	user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER NOT NULL DEFAULT 0,
	revoked_at   INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX api_keys_user ON api_keys (user_id, created_at DESC);

-- What an API client sent at create, echoed in the instance object; empty
-- means "not given", and the API answers its default.
ALTER TABLE databases ADD COLUMN cloud_provider TEXT NOT NULL DEFAULT '';
ALTER TABLE databases ADD COLUMN region TEXT NOT NULL DEFAULT '';
ALTER TABLE databases ADD COLUMN memory TEXT NOT NULL DEFAULT '';
ALTER TABLE databases ADD COLUMN storage TEXT NOT NULL DEFAULT '';

-- The database's own credentials; only a hash of the password is kept.
ALTER TABLE databases ADD COLUMN username TEXT NOT NULL DEFAULT '';
ALTER TABLE databases ADD COLUMN password_hash TEXT NOT NULL DEFAULT '';
