-- Counts that stay cheap at a million files: the status page, /api/v1/stats and the metrics read per-status and
-- per-reason counts from `file_count_deltas` (a few rows) instead of counting `files`. Statement-level triggers
-- append one signed row per (status, reason, scanned) a statement changed, so writers never wait on a shared
-- counter row; `files::compact_counts` folds the rows together from time to time.

-- The reason group of a file (numbers replaced by N so files skipped by one rule count together); '' for statuses
-- without a reason an operator asks about.
CREATE FUNCTION smanager_reason_key(s file_status, status_reason TEXT, last_error TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN s IN ('skipped', 'invalid', 'failed', 'pin_error', 'insufficient_space', 'pending_replica')
              THEN regexp_replace(COALESCE(status_reason, last_error, ''), '[0-9]+([.][0-9]+)?', 'N', 'g')
              ELSE '' END
$$;

CREATE TABLE file_count_deltas (
  id BIGSERIAL PRIMARY KEY,
  status file_status NOT NULL,
  reason TEXT NOT NULL,
  scanned BOOLEAN NOT NULL,
  n BIGINT NOT NULL
);

INSERT INTO file_count_deltas (status, reason, scanned, n)
SELECT status, smanager_reason_key(status, status_reason, last_error), seen_by_scan, count(*)
  FROM files GROUP BY 1, 2, 3;

CREATE FUNCTION files_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO file_count_deltas (status, reason, scanned, n)
  SELECT status, smanager_reason_key(status, status_reason, last_error), seen_by_scan, count(*)
    FROM new_rows GROUP BY 1, 2, 3;
  RETURN NULL;
END $$;

CREATE FUNCTION files_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO file_count_deltas (status, reason, scanned, n)
  SELECT status, reason, scanned, sum(n) FROM (
      SELECT status, smanager_reason_key(status, status_reason, last_error) AS reason, seen_by_scan AS scanned, 1 AS n
        FROM new_rows
      UNION ALL
      SELECT status, smanager_reason_key(status, status_reason, last_error), seen_by_scan, -1
        FROM old_rows) AS d
   GROUP BY 1, 2, 3 HAVING sum(n) <> 0;
  RETURN NULL;
END $$;

CREATE FUNCTION files_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO file_count_deltas (status, reason, scanned, n)
  SELECT status, smanager_reason_key(status, status_reason, last_error), seen_by_scan, -count(*)
    FROM old_rows GROUP BY 1, 2, 3;
  RETURN NULL;
END $$;

CREATE TRIGGER files_count_inserted AFTER INSERT ON files REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION files_count_inserted();
CREATE TRIGGER files_count_updated AFTER UPDATE ON files REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION files_count_updated();
CREATE TRIGGER files_count_deleted AFTER DELETE ON files REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION files_count_deleted();

-- The admin API's file list, newest change first, with and without a status, and by reason group.
DROP INDEX files_status;
CREATE INDEX files_by_change ON files (updated_at DESC, cid);
CREATE INDEX files_status_by_change ON files (status, updated_at DESC, cid);
CREATE INDEX files_reason_by_change ON files (status, smanager_reason_key(status, status_reason, last_error), updated_at DESC, cid)
  WHERE status IN ('skipped', 'invalid', 'failed', 'pin_error', 'insufficient_space', 'pending_replica');
-- The status page's recent failures: newest first, without walking every file when there are none.
CREATE INDEX files_failures_by_change ON files (updated_at DESC)
  WHERE last_error IS NOT NULL AND status IN ('pin_error', 'failed', 'insufficient_space');
