-- Rounds in a row a file waited for sWorker space (`insufficient_space`): its recheck backs off
-- (retry.baseDelaySecs × 2^waits, capped by retry.maxDelaySecs) so a full node does not judge the same files every
-- round. Reset when the file is sealed or re-ordered.
ALTER TABLE files ADD COLUMN space_waits INTEGER NOT NULL DEFAULT 0;
