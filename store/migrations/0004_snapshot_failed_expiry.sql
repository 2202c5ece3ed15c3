-- The retention sweeper also deletes failed snapshots once they expire;
-- 0002 indexes the expiry of completed snapshots only.
CREATE INDEX snapshots_failed_expiry ON snapshots (expires_at) WHERE status = 'failed';
