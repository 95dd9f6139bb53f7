ALTER TABLE files DROP COLUMN space_waits;
