-- The whole state of smanager. PostgreSQL is the single source of truth: actor mailboxes only carry wake-ups.

-- Where a file is in the pipeline. Transitions are listed in ARCHITECTURE.md.
CREATE TYPE file_status AS ENUM (
    'new',                -- indexed, waiting for the picker
    'skipped',            -- a filter said this node should not store it (reason in status_reason)
    'pending_replica',    -- no replica yet on chain; rechecked later
    'insufficient_space', -- would not fit now; rechecked later
    'queued',             -- picked; a pin row is reserved for the puller
    'pinning',            -- pin/add in flight (Crust IPFS seals every block as it arrives)
    'sealed',             -- pin/add returned or sWorker reports it valid
    'pin_error',          -- an attempt failed; retried at next_attempt_at
    'failed',             -- gave up (attempts exhausted or unresolved for too long)
    'invalid',            -- the chain data cannot be stored (not a CID, no replica for too long, illegal)
    'closed',             -- the order closed on chain; cleanup decides what to delete
    'cleaned'             -- deleted from the sWorker after closing
);

CREATE TYPE pin_status AS ENUM ('queued', 'pinning', 'pinned', 'failed', 'aborted');
CREATE TYPE pin_lane AS ENUM ('small', 'large');
CREATE TYPE cleanup_status AS ENUM ('pending', 'done', 'failed', 'cancelled');

CREATE TABLE files (
    cid              TEXT PRIMARY KEY,
    size_bytes       BIGINT NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    tips             NUMERIC(39, 0) NOT NULL DEFAULT 0,
    amount           NUMERIC(39, 0) NOT NULL DEFAULT 0,
    expired_at       BIGINT NOT NULL DEFAULT 0,           -- block number; 0 = no replica yet
    replicas         INTEGER NOT NULL DEFAULT 0,
    seen_by_event    BOOLEAN NOT NULL DEFAULT FALSE,      -- found by the event indexer
    seen_by_scan     BOOLEAN NOT NULL DEFAULT FALSE,      -- found by the FilesV2 scanner
    first_seen_block BIGINT,
    last_order_block BIGINT,
    status           file_status NOT NULL DEFAULT 'new',
    status_reason    TEXT,
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  TIMESTAMPTZ,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Picker: the next candidates, best tips first, per source.
CREATE INDEX files_new_by_tips ON files (tips DESC, cid) WHERE status = 'new';
-- Retry: waiting files whose time has come.
CREATE INDEX files_waiting_due ON files (next_attempt_at)
    WHERE status IN ('pending_replica', 'insufficient_space', 'pin_error');
CREATE INDEX files_status ON files (status);

CREATE TABLE file_owners (
    cid              TEXT NOT NULL REFERENCES files (cid) ON DELETE CASCADE,
    owner            TEXT NOT NULL,                        -- SS58 address of the order's signer
    orders           INTEGER NOT NULL DEFAULT 1,
    first_block      BIGINT NOT NULL,
    last_block       BIGINT NOT NULL,
    PRIMARY KEY (cid, owner)
);

CREATE TABLE pins (
    id               BIGSERIAL PRIMARY KEY,
    cid              TEXT NOT NULL REFERENCES files (cid) ON DELETE CASCADE,
    status           pin_status NOT NULL DEFAULT 'queued',
    lane             pin_lane NOT NULL,
    size_bytes       BIGINT NOT NULL DEFAULT 0,            -- bytes reserved while the pin is live
    attempt          INTEGER NOT NULL DEFAULT 1,
    lease_holder     TEXT,
    lease_expires_at TIMESTAMPTZ,
    progress         BIGINT NOT NULL DEFAULT 0,            -- DAG nodes reported by pin/add?progress
    sealed_bytes     BIGINT NOT NULL DEFAULT 0,            -- sWorker pending sealed_size, last seen
    seal_checked_at  TIMESTAMPTZ,
    seal_stalls      INTEGER NOT NULL DEFAULT 0,           -- checks in a row without growth
    error            TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- At most one live pin per CID: a crash or a second process can never pin the same file twice at once.
CREATE UNIQUE INDEX pins_one_live_per_cid ON pins (cid) WHERE status IN ('queued', 'pinning');
CREATE INDEX pins_live_by_lease ON pins (lease_expires_at) WHERE status IN ('queued', 'pinning');
CREATE INDEX pins_cid ON pins (cid, id DESC);

CREATE TABLE cleanups (
    id               BIGSERIAL PRIMARY KEY,
    cid              TEXT NOT NULL REFERENCES files (cid) ON DELETE CASCADE,
    status           cleanup_status NOT NULL DEFAULT 'pending',
    reason           TEXT NOT NULL,                        -- closed | illegal | expired | operator
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    done_at          TIMESTAMPTZ
);

CREATE UNIQUE INDEX cleanups_one_pending_per_cid ON cleanups (cid) WHERE status = 'pending';
CREATE INDEX cleanups_due ON cleanups (next_attempt_at) WHERE status = 'pending';

-- Named cursors: the last fully indexed finalized block, the FilesV2 scanner position.
CREATE TABLE chain_cursors (
    name             TEXT PRIMARY KEY,
    block_number     BIGINT,
    block_hash       TEXT,
    scan_key         TEXT,                                 -- hex storage key to resume a scan after
    scan_round       BIGINT NOT NULL DEFAULT 0,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Small facts other actors read: chain head and time, group membership, node count, paused flag.
CREATE TABLE kv_state (
    key              TEXT PRIMARY KEY,
    value            JSONB NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
