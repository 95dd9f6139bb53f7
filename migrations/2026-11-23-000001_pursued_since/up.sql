-- When the current attempt to store a file began: first indexing, an order after its previous order closed, or an
-- operator retry. Giving up (retry.giveUpDays) and "no replica yet" (noReplicaDays) count from here, so a file
-- ordered again long after it was first seen gets a fresh start.
ALTER TABLE files ADD COLUMN pursued_since TIMESTAMPTZ NOT NULL DEFAULT now();
UPDATE files SET pursued_since = created_at;
CREATE INDEX files_waiting_since ON files (pursued_since)
    WHERE status IN ('pending_replica', 'insufficient_space', 'pin_error');
