-- Snapshots of hosted databases, the background jobs that make, restore and
-- export them, and the audit log. Times are Unix milliseconds, UTC.
CREATE TABLE snapshots (
	id           TEXT PRIMARY KEY,
	database_id  TEXT NOT NULL,
	type         TEXT NOT NULL CHECK (type IN ('Scheduled', 'Load', 'On-demand')),
	reason       TEXT NOT NULL,
	status       TEXT NOT NULL CHECK (status IN ('pending', 'in-progress', 'completed', 'failed')),
	created_at   INTEGER NOT NULL,
	completed_at INTEGER NOT NULL DEFAULT 0,
	size_bytes   INTEGER NOT NULL DEFAULT 0,
	expires_at   INTEGER NOT NULL DEFAULT 0,
	sha256       TEXT NOT NULL DEFAULT '',
	root         TEXT NOT NULL DEFAULT '',
	page_size    INTEGER NOT NULL DEFAULT 0,
	pages        INTEGER NOT NULL DEFAULT 0,
	error        TEXT NOT NULL DEFAULT '',
	verified     INTEGER NOT NULL DEFAULT 0,
	verified_at  INTEGER NOT NULL DEFAULT 0,
	verify_error TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX snapshots_database ON snapshots (database_id, created_at DESC);
CREATE INDEX snapshots_expiry ON snapshots (expires_at) WHERE status = 'completed';

CREATE TABLE jobs (
	id           TEXT PRIMARY KEY,
	kind         TEXT NOT NULL,
	database_id  TEXT NOT NULL DEFAULT '',
	snapshot_id  TEXT NOT NULL DEFAULT '',
	target_id    TEXT NOT NULL DEFAULT '',
	actor        TEXT NOT NULL DEFAULT '',
	status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
	done_bytes   INTEGER NOT NULL DEFAULT 0,
	total_bytes  INTEGER NOT NULL DEFAULT 0,
	message      TEXT NOT NULL DEFAULT '',
	error        TEXT NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	started_at   INTEGER NOT NULL DEFAULT 0,
	finished_at  INTEGER NOT NULL DEFAULT 0,
	result       TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX jobs_database ON jobs (database_id, created_at DESC);
CREATE INDEX jobs_open ON jobs (status) WHERE status IN ('queued', 'running');

CREATE TABLE audit_events (
	id          INTEGER PRIMARY KEY,
	at          INTEGER NOT NULL,
	actor       TEXT NOT NULL,
	action      TEXT NOT NULL,
	database_id TEXT NOT NULL DEFAULT '',
	snapshot_id TEXT NOT NULL DEFAULT '',
	outcome     TEXT NOT NULL CHECK (outcome IN ('ok', 'failed', 'refused', 'started')),
	detail      TEXT NOT NULL DEFAULT '',
	duration_ms INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX audit_events_at ON audit_events (at DESC);
CREATE INDEX audit_events_database ON audit_events (database_id, at DESC);
