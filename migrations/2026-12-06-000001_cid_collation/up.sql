-- CIDs and SS58 owners are ASCII and compared byte by byte: under the "C" collation every index comparison on them
-- is a memcmp, where the database's default collation (C.UTF-8, en_US.UTF-8, ...) calls strcoll for each one. Keys
-- also sort as Rust sorts them, so a batch the indexer or scanner sorts before writing reaches the index in order.
-- Every column that joins on a CID changes together, so the foreign keys still compare like with like.
ALTER TABLE file_owners ALTER COLUMN cid TYPE TEXT COLLATE "C", ALTER COLUMN owner TYPE TEXT COLLATE "C";
ALTER TABLE pins ALTER COLUMN cid TYPE TEXT COLLATE "C";
ALTER TABLE cleanups ALTER COLUMN cid TYPE TEXT COLLATE "C";
ALTER TABLE files ALTER COLUMN cid TYPE TEXT COLLATE "C";
