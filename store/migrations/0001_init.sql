-- The console's own tables: settings, users, sessions, sign-in throttling and
-- hosted databases. Times are Unix milliseconds, UTC.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;

CREATE TABLE users (
	id            INTEGER PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
	password_hash TEXT NOT NULL,
	role          TEXT NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
	disabled      INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
	id         TEXT PRIMARY KEY,
	user_id    INTEGER REFERENCES users (id) ON DELETE CASCADE,
	data       TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE login_failures (
	email TEXT NOT NULL COLLATE NOCASE,
	at    INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_email ON login_failures (email, at);

CREATE TABLE databases (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	plan       TEXT NOT NULL CHECK (plan IN ('free', 'professional', 'enterprise')),
	status     TEXT NOT NULL,
	schedule   TEXT NOT NULL DEFAULT '',
	size_bytes INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
) STRICT;
