DROP INDEX files_waiting_since;
ALTER TABLE files DROP COLUMN pursued_since;
