//! The `files` table: what the indexer writes, what the picker reads, what operators list and retry.

use std::collections::BTreeMap;

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Numeric, Text};

use super::schema::{cleanups, file_owners, files, pins};
use super::state::{self, ChainHead, INDEXER_CURSOR, KV_CHAIN_HEAD};
use super::{Cleanup, DbError, File, FileOwner, FileStatus, Lane, Pin, PinStatus};
use crate::chain::{ChainEvent, FileOrder, IndexedBlock};
use crate::config::RankBy;

/// Longest CID-ish string we keep for an invalid MerkleRoot (the rest is replaced by its length).
const MAX_RAW_CID: usize = 256;

/// Applies one finalized block and moves the indexer cursor in the same transaction: a block is indexed entirely or
/// not at all. Returns what changed so the caller can wake the picker and cleanup.
pub fn apply_block(conn: &mut PgConnection, block: &IndexedBlock) -> Result<BlockOutcome, DbError> {
    let mut out = apply_blocks(conn, std::slice::from_ref(block))?;
    Ok(out.pop().unwrap_or(BlockOutcome {
        already_applied: true,
        ..Default::default()
    }))
}

/// Applies consecutive finalized blocks, in order, and moves the indexer cursor to the last of them, all in one
/// transaction: during a catch-up one commit serves many blocks, and a crash still leaves every block of the run
/// either indexed or not. Blocks at or below the cursor are skipped (`already_applied`). One outcome per block.
pub fn apply_blocks(conn: &mut PgConnection, blocks: &[IndexedBlock]) -> Result<Vec<BlockOutcome>, DbError> {
    conn.transaction(|conn| {
        // The chain is the record these rows are derived from: a commit a server crash loses is lost with its cursor
        // and read again from the chain (the cursor check below), so the writer does not wait for the WAL flush.
        // Whatever acts on these rows (a pin, a cleanup) commits durably, which flushes this commit first.
        diesel::sql_query("SET LOCAL synchronous_commit = off").execute(conn)?;
        // Lock the cursor: a second writer of the same blocks (an actor restarted while its previous incarnation's
        // transaction was still committing) waits here, then sees the blocks are done and applies nothing.
        diesel::sql_query("INSERT INTO chain_cursors (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind::<Text, _>(INDEXER_CURSOR)
            .execute(conn)?;
        let mut done: Option<i64> = super::schema::chain_cursors::table
            .find(INDEXER_CURSOR)
            .select(super::schema::chain_cursors::block_number)
            .for_update()
            .first(conn)?;
        let mut outcomes: Vec<BlockOutcome> = Vec::with_capacity(blocks.len());
        let mut last = None;
        // Orders and closes are gathered and written set-wise (a few statements per kind for the whole run), across
        // blocks: orders first, then closes. Writes on different CIDs commute, and a CID ordered then closed sees
        // its events in chain order that way; only an order after a close of the same CID writes what was gathered
        // first (a catch-up is full of files ordered and later closed, and rarely of files ordered again). Refreshes
        // and bad data are rare: they write everything gathered, then themselves.
        let mut run = Gathered::default();
        for block in blocks {
            let number = block_i64(block.number)?;
            if done.is_some_and(|d| d >= number) {
                outcomes.push(BlockOutcome {
                    already_applied: true,
                    ..Default::default()
                });
                continue;
            }
            if let Some(d) = done.filter(|d| number > d + 1) {
                // The cursor is behind the blocks this writer holds: a batch it saw committed was lost (a server
                // run with `synchronous_commit = off`, a common tuning, loses its last commits when it crashes) or an
                // operator moved the cursor back. Writing on would skip blocks: the indexer restarts from the cursor.
                return Err(DbError::CursorBehind {
                    cursor: d,
                    next: number,
                });
            }
            let at = outcomes.len();
            outcomes.push(BlockOutcome::default());
            for event in &block.events {
                match event {
                    ChainEvent::Ordered(order) => {
                        if run.closed_cids.contains(order.cid.as_str()) {
                            run.write_all(conn, &mut outcomes)?;
                        }
                        run.orders.push((order, number));
                        outcomes[at].ordered += 1;
                    }
                    ChainEvent::Closed { cid, reason } => {
                        run.closes.push((cid.as_str(), reason.as_str(), at));
                        run.closed_cids.insert(cid.as_str());
                    }
                    ChainEvent::Invalid { raw, reason } => {
                        run.write_all(conn, &mut outcomes)?;
                        record_invalid(conn, raw, &format!("block {number}: {reason}"), Some(number))?;
                        outcomes[at].invalid += 1;
                    }
                    ChainEvent::Refreshed(f) => {
                        run.write_all(conn, &mut outcomes)?;
                        if refresh_chain_facts(conn, f)? {
                            outcomes[at].refreshed += 1;
                        }
                    }
                }
            }
            done = Some(number);
            last = Some(block);
        }
        run.write_all(conn, &mut outcomes)?;
        if let Some(block) = last {
            let number = block_i64(block.number)?;
            state::set_block_cursor(conn, INDEXER_CURSOR, number, &block.hash)?;
            let head = ChainHead {
                number,
                hash: block.hash.clone(),
                timestamp_ms: block.timestamp_ms.and_then(|t| i64::try_from(t).ok()),
            };
            state::kv_set(conn, KV_CHAIN_HEAD, &head)?;
        }
        Ok(outcomes)
    })
}

/// Orders and closes gathered for set-wise writing, with the CIDs the closes hold (an order on one of them must
/// wait until they are written).
#[derive(Default)]
struct Gathered<'a> {
    orders: Vec<(&'a FileOrder, i64)>,
    /// (CID, reason, index of the block's outcome).
    closes: Vec<(&'a str, &'a str, usize)>,
    closed_cids: std::collections::HashSet<&'a str>,
}

impl Gathered<'_> {
    /// Orders before closes: every gathered order of a CID came before its gathered closes.
    fn write_all(&mut self, conn: &mut PgConnection, outcomes: &mut [BlockOutcome]) -> Result<(), DbError> {
        upsert_orders(conn, &std::mem::take(&mut self.orders))?;
        close_files(conn, &std::mem::take(&mut self.closes), outcomes)?;
        self.closed_cids.clear();
        Ok(())
    }
}

/// Counts of what a block changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlockOutcome {
    /// The cursor was already at or past this block: nothing was written.
    pub already_applied: bool,
    pub ordered: usize,
    pub closed: usize,
    pub invalid: usize,
    /// Files whose chain facts a renewal or prepaid top-up refreshed.
    pub refreshed: usize,
}

/// A renewal or prepaid top-up: the file's chain facts as its storage entry holds them now. A decoded size of 0
/// (an entry that did not decode) keeps the known size.
fn refresh_chain_facts(conn: &mut PgConnection, f: &crate::chain::ScannedFile) -> Result<bool, DbError> {
    let amount = BigDecimal::from(f.amount);
    let size = i64::try_from(f.size).map_err(|_| DbError::Invalid(format!("file size {} out of range", f.size)))?;
    let n = diesel::update(files::table.find(&f.cid))
        .set((
            files::expired_at.eq(i64::from(f.expired_at)),
            files::amount.eq(amount),
            files::replicas.eq(i32::try_from(f.replicas).unwrap_or(i32::MAX)),
            files::size_bytes.eq(diesel::dsl::sql::<BigInt>(&format!(
                "CASE WHEN {size} > 0 THEN {size} ELSE files.size_bytes END"
            ))),
            files::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

fn block_i64(n: u64) -> Result<i64, DbError> {
    i64::try_from(n).map_err(|_| DbError::Invalid(format!("block number {n} out of range")))
}

/// Cancels the pending cleanups of the CIDs in `$1` (ordered again). `'pending'` is written out, not bound: a
/// prepared statement's generic plan cannot use the partial indexes on pending cleanups for a bound status, and
/// would read every cleanup ever made, once per write. Public so a test can check its generic plan.
pub const CANCEL_CLEANUPS_ORDERED_AGAIN: &str =
    "UPDATE cleanups SET status = 'cancelled', last_error = 'cancelled: ordered again', updated_at = now()
      WHERE status = 'pending' AND cid = ANY($1)";

/// New orders, or repeat orders on known CIDs, in a few statements whatever their number: a look-up of which CIDs
/// are known, a `COPY` of the new files and of their owners, then for known CIDs three upserts (tips add up, a closed
/// file becomes live again and its pending cleanup is cancelled, owners count their orders). Returns how many orders
/// were applied.
/// A new order re-opens every file that is not being stored (closed, cleaned, invalid,
/// failed, skipped, or waiting for a replica because the scanner saw it first), as the TypeScript manager does: an owner paying again is a new reason to store it, so the
/// Picker decides afresh with attempts reset and a fresh `pursued_since`.
fn upsert_orders(conn: &mut PgConnection, orders: &[(&FileOrder, i64)]) -> Result<usize, DbError> {
    use diesel::sql_types::{Array, Int4};
    if orders.is_empty() {
        return Ok(0);
    }
    // A re-opened file's pursuit starts with this statement, not with its transaction: a catch-up may create,
    // close and re-open a file in one transaction, and its pursuit still restarts after its first sighting.
    // One row per CID and per (CID, owner): a statement may not update the same row twice. Orders come in chain
    // order, so the first order of a CID gives its size and the first block, the last one the last block.
    struct Agg {
        size: i64,
        tips: BigDecimal,
        first: i64,
        last: i64,
    }
    let mut by_cid: BTreeMap<&str, Agg> = BTreeMap::new();
    let mut by_owner: BTreeMap<(&str, &str), (i32, i64, i64)> = BTreeMap::new();
    for (o, block) in orders {
        let size = i64::try_from(o.size).map_err(|_| DbError::Invalid(format!("size {} out of range", o.size)))?;
        let e = by_cid.entry(o.cid.as_str()).or_insert(Agg {
            size,
            tips: BigDecimal::from(0),
            first: *block,
            last: *block,
        });
        e.tips += BigDecimal::from(o.tips);
        e.last = *block;
        let w = by_owner
            .entry((o.cid.as_str(), o.owner.as_str()))
            .or_insert((0, *block, *block));
        w.0 += 1;
        w.2 = *block;
    }
    // Files not yet known (all of them, in a catch-up of new orders) are copied in with their owners; if the
    // scanner inserts one of them meanwhile, the copy is rolled back to its savepoint by the unique key and every
    // order is upserted instead.
    let all: Vec<&str> = by_cid.keys().copied().collect();
    let known = known_cids(conn, &all)?;
    if known.len() < by_cid.len() {
        let copied = conn.transaction(|conn| {
            copy_new_orders(
                conn,
                by_cid
                    .iter()
                    .filter(|(c, _)| !known.contains(**c))
                    .map(|(c, a)| (*c, a.size, &a.tips, a.first, a.last)),
                by_owner
                    .iter()
                    .filter(|((c, _), _)| !known.contains(*c))
                    .map(|((c, o), v)| (*c, *o, *v)),
            )
        });
        match copied {
            Ok(()) => {
                by_cid.retain(|c, _| known.contains(*c));
                by_owner.retain(|(c, _), _| known.contains(*c));
            }
            Err(e) => match e.unique_violation() {
                Some(why) => {
                    log::debug!(target: "smanager::indexer", "an ordered file was inserted meanwhile ({why}); upserting the orders");
                }
                None => return Err(e),
            },
        }
    }
    if by_cid.is_empty() {
        return Ok(orders.len());
    }
    let cids: Vec<&str> = by_cid.keys().copied().collect();
    let sizes: Vec<i64> = by_cid.values().map(|v| v.size).collect();
    let tips: Vec<BigDecimal> = by_cid.values().map(|v| v.tips.clone()).collect();
    let firsts: Vec<i64> = by_cid.values().map(|v| v.first).collect();
    let lasts: Vec<i64> = by_cid.values().map(|v| v.last).collect();
    diesel::sql_query(
        "INSERT INTO files (cid, size_bytes, tips, seen_by_event, first_seen_block, last_order_block, status)
         SELECT cid, size, tips, TRUE, first, last, 'new'
           FROM UNNEST($1::text[], $2::int8[], $3::numeric[], $4::int8[], $5::int8[]) AS t(cid, size, tips, first, last)
         ON CONFLICT (cid) DO UPDATE SET
           tips = files.tips + EXCLUDED.tips,
           size_bytes = CASE WHEN files.size_bytes = 0 THEN EXCLUDED.size_bytes ELSE files.size_bytes END,
           seen_by_event = TRUE,
           first_seen_block = COALESCE(files.first_seen_block, EXCLUDED.first_seen_block),
           last_order_block = EXCLUDED.last_order_block,
           status = CASE WHEN files.status IN ('closed', 'cleaned', 'invalid', 'failed', 'skipped', 'pending_replica') THEN 'new'::file_status ELSE files.status END,
           status_reason = CASE WHEN files.status IN ('closed', 'cleaned', 'invalid', 'failed', 'skipped', 'pending_replica') THEN 'ordered again' ELSE files.status_reason END,
           attempts = CASE WHEN files.status IN ('closed', 'cleaned', 'invalid', 'failed', 'skipped', 'pending_replica') THEN 0 ELSE files.attempts END,
           pursued_since = CASE WHEN files.status IN ('closed', 'cleaned', 'invalid', 'failed', 'skipped', 'pending_replica') THEN statement_timestamp() ELSE files.pursued_since END,
           updated_at = now()",
    )
    .bind::<Array<Text>, _>(&cids)
    .bind::<Array<BigInt>, _>(&sizes)
    .bind::<Array<Numeric>, _>(&tips)
    .bind::<Array<BigInt>, _>(&firsts)
    .bind::<Array<BigInt>, _>(&lasts)
    .execute(conn)?;
    let ocids: Vec<&str> = by_owner.keys().map(|k| k.0).collect();
    let owners: Vec<&str> = by_owner.keys().map(|k| k.1).collect();
    let counts: Vec<i32> = by_owner.values().map(|v| v.0).collect();
    let ofirsts: Vec<i64> = by_owner.values().map(|v| v.1).collect();
    let olasts: Vec<i64> = by_owner.values().map(|v| v.2).collect();
    diesel::sql_query(
        "INSERT INTO file_owners (cid, owner, orders, first_block, last_block)
         SELECT cid, owner, n, first, last
           FROM UNNEST($1::text[], $2::text[], $3::int4[], $4::int8[], $5::int8[]) AS t(cid, owner, n, first, last)
         ON CONFLICT (cid, owner) DO UPDATE SET orders = file_owners.orders + EXCLUDED.orders,
                                                last_block = EXCLUDED.last_block",
    )
    .bind::<Array<Text>, _>(&ocids)
    .bind::<Array<Text>, _>(&owners)
    .bind::<Array<Int4>, _>(&counts)
    .bind::<Array<BigInt>, _>(&ofirsts)
    .bind::<Array<BigInt>, _>(&olasts)
    .execute(conn)?;
    diesel::sql_query(CANCEL_CLEANUPS_ORDERED_AGAIN)
        .bind::<Array<Text>, _>(&cids)
        .execute(conn)?;
    Ok(orders.len())
}

/// Which of `cids` are in `files`: the rest can be `COPY`ed in.
fn known_cids(conn: &mut PgConnection, cids: &[&str]) -> Result<std::collections::HashSet<String>, DbError> {
    Ok(files::table
        .filter(files::cid.eq_any(cids))
        .select(files::cid)
        .load::<String>(conn)?
        .into_iter()
        .collect())
}

/// Copies new files (CID, size, tips, first and last order block) and their owners (CID, owner, orders, first and
/// last block) into `files` and `file_owners`: the CIDs are known not to be there.
fn copy_new_orders<'a>(
    conn: &mut PgConnection,
    new_files: impl Iterator<Item = (&'a str, i64, &'a BigDecimal, i64, i64)>,
    new_owners: impl Iterator<Item = (&'a str, &'a str, (i32, i64, i64))>,
) -> Result<(), DbError> {
    use std::io::Write as _;
    let mut text = Vec::new();
    for (cid, size, tips, first, last) in new_files {
        writeln!(text, "{}\t{size}\t{tips}\tt\t{first}\t{last}\tnew", copy_text(cid))
            .map_err(|e| DbError::Invalid(e.to_string()))?;
    }
    diesel::copy_from(files::table)
        .from_raw_data(
            (
                files::cid,
                files::size_bytes,
                files::tips,
                files::seen_by_event,
                files::first_seen_block,
                files::last_order_block,
                files::status,
            ),
            super::copy_body(&text),
        )
        .execute(conn)?;
    text.clear();
    for (cid, owner, (n, first, last)) in new_owners {
        writeln!(text, "{}\t{}\t{n}\t{first}\t{last}", copy_text(cid), copy_text(owner))
            .map_err(|e| DbError::Invalid(e.to_string()))?;
    }
    diesel::copy_from(file_owners::table)
        .from_raw_data(
            (
                file_owners::cid,
                file_owners::owner,
                file_owners::orders,
                file_owners::first_block,
                file_owners::last_block,
            ),
            super::copy_body(&text),
        )
        .execute(conn)?;
    Ok(())
}

/// Marks files closed and queues their cleanups, in chain order, in four statements whatever their number. A file
/// never seen before is recorded too: it may have been stored by the manager this one replaced, and
/// `storage/delete` answering 404 is cheap. Each close that changed something counts for its block in `outcomes`
/// (a file already closed, or closed twice in the run, counts once).
fn close_files(
    conn: &mut PgConnection,
    closes: &[(&str, &str, usize)],
    outcomes: &mut [BlockOutcome],
) -> Result<(), DbError> {
    use diesel::sql_types::Array;
    if closes.is_empty() {
        return Ok(());
    }
    let wanted: Vec<&str> = closes.iter().map(|c| c.0).collect();
    let known: Vec<(String, FileStatus)> = files::table
        .filter(files::cid.eq_any(&wanted))
        .select((files::cid, files::status))
        // Rows locked in one order, so two writers closing the same files cannot deadlock each other.
        .order(files::cid)
        .for_update()
        .load(conn)?;
    let known: std::collections::HashMap<String, FileStatus> = known.into_iter().collect();
    // The first close of each CID decides; the reason of that close is kept.
    let mut seen = std::collections::HashSet::new();
    let mut update: Vec<(&str, &str)> = Vec::new();
    let mut insert: Vec<(&str, &str)> = Vec::new();
    for &(cid, reason, at) in closes {
        if !seen.insert(cid) {
            continue;
        }
        match known.get(cid) {
            Some(FileStatus::Closed | FileStatus::Cleaned) => continue,
            Some(_) => update.push((cid, reason)),
            None => insert.push((cid, reason)),
        }
        if let Some(o) = outcomes.get_mut(at) {
            o.closed += 1;
        }
    }
    let split = |v: &[(&str, &str)]| -> (Vec<String>, Vec<String>) {
        v.iter().map(|(c, r)| (c.to_string(), r.to_string())).unzip()
    };
    let (ucids, ureasons) = split(&update);
    let (icids, ireasons) = split(&insert);
    let (ccids, creasons) = split(&[update, insert].concat());
    if ccids.is_empty() {
        return Ok(());
    }
    diesel::sql_query(
        "UPDATE files SET status = 'closed', status_reason = t.reason, next_attempt_at = NULL, updated_at = now()
           FROM UNNEST($1::text[], $2::text[]) AS t(cid, reason) WHERE files.cid = t.cid",
    )
    .bind::<Array<Text>, _>(&ucids)
    .bind::<Array<Text>, _>(&ureasons)
    .execute(conn)?;
    diesel::sql_query(
        "INSERT INTO files (cid, status, status_reason)
         SELECT cid, 'closed', reason FROM UNNEST($1::text[], $2::text[]) AS t(cid, reason)",
    )
    .bind::<Array<Text>, _>(&icids)
    .bind::<Array<Text>, _>(&ireasons)
    .execute(conn)?;
    diesel::sql_query(
        "INSERT INTO cleanups (cid, reason) SELECT cid, reason FROM UNNEST($1::text[], $2::text[]) AS t(cid, reason)
         ON CONFLICT (cid) WHERE status = 'pending' DO NOTHING",
    )
    .bind::<Array<Text>, _>(&ccids)
    .bind::<Array<Text>, _>(&creasons)
    .execute(conn)?;
    Ok(())
}

/// Records chain data that names no usable file. It never downgrades a file already known under that key: a bad
/// event next to a good order must not turn a live (pinning, sealed) file into `invalid`.
fn record_invalid(conn: &mut PgConnection, raw: &str, reason: &str, block: Option<i64>) -> Result<(), DbError> {
    // PostgreSQL text cannot hold NUL, and control characters help nobody: keep them escaped.
    let escaped: String;
    let raw = if raw.chars().any(char::is_control) {
        escaped = raw.escape_debug().to_string();
        escaped.as_str()
    } else {
        raw
    };
    let key = if raw.len() > MAX_RAW_CID {
        let mut cut = MAX_RAW_CID;
        while !raw.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…({} bytes)", &raw[..cut], raw.len())
    } else {
        raw.to_string()
    };
    diesel::sql_query(
        "INSERT INTO files (cid, status, status_reason, seen_by_event, first_seen_block, last_order_block)
         VALUES ($1, 'invalid', $2, TRUE, $3, $3)
         ON CONFLICT (cid) DO UPDATE SET status_reason = EXCLUDED.status_reason, updated_at = now()
         WHERE files.status = 'invalid'",
    )
    .bind::<Text, _>(&key)
    .bind::<Text, _>(reason.replace('\0', "\\0"))
    .bind::<diesel::sql_types::Nullable<BigInt>, _>(block)
    .execute(conn)?;
    Ok(())
}

/// Which indexer found the candidates a pick draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Orders seen as `FileSuccess` events.
    Events,
    /// Files found only by the FilesV2 scanner.
    Scan,
}

/// The best `new` files of a source in one lane (`large_from` bytes and up is the large lane), in ranking order:
/// with `tips` (the TypeScript order) new orders by tips and scanned files by their on-chain amount, the first seen
/// first among equals; with `rewardPerByte`, (tips + amount) per byte.
pub fn candidates(
    conn: &mut PgConnection,
    source: Source,
    lane: Lane,
    large_from: i64,
    rank: RankBy,
    limit: i64,
) -> Result<Vec<File>, DbError> {
    let mut q = files::table
        .filter(files::status.eq(FileStatus::New))
        .select(File::as_select())
        .into_boxed();
    q = match source {
        Source::Events => q.filter(files::seen_by_event.eq(true)),
        Source::Scan => q.filter(files::seen_by_event.eq(false)),
    };
    q = match lane {
        Lane::Small => q.filter(files::size_bytes.lt(large_from)),
        Lane::Large => q.filter(files::size_bytes.ge(large_from)),
    };
    q = match (rank, source) {
        (RankBy::Tips, Source::Events) => q.order((files::tips.desc(), files::created_at.asc(), files::cid.asc())),
        (RankBy::Tips, Source::Scan) => q.order((files::amount.desc(), files::created_at.asc(), files::cid.asc())),
        (RankBy::RewardPerByte, _) => q.order((
            diesel::dsl::sql::<Numeric>("(files.tips + files.amount) / GREATEST(files.size_bytes, 1)").desc(),
            files::created_at.asc(),
            files::cid.asc(),
        )),
    };
    Ok(q.limit(limit).load(conn)?)
}

/// Moves a file from one of `from` to `to`; false if someone else moved it first.
pub fn transition(
    conn: &mut PgConnection,
    cid: &str,
    from: &[FileStatus],
    to: FileStatus,
    reason: Option<&str>,
    next_attempt_at: Option<DateTime<Utc>>,
) -> Result<bool, DbError> {
    let n = diesel::update(files::table.find(cid).filter(files::status.eq_any(from.to_vec())))
        .set((
            files::status.eq(to),
            files::status_reason.eq(reason),
            files::next_attempt_at.eq(next_attempt_at),
            files::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// Records the Picker's verdict on a `new` file judged as coming from `source`. A verdict from the scanned-file
/// rules (replicas, lifetime) is dropped if the file's order event was indexed meanwhile: a fresh order must be
/// judged by the order rules, never parked on stale scan values. False if the file changed first.
pub fn record_verdict(
    conn: &mut PgConnection,
    cid: &str,
    source: Source,
    to: FileStatus,
    reason: Option<&str>,
    next_attempt_at: Option<DateTime<Utc>>,
) -> Result<bool, DbError> {
    // Events: any value matches; Scan: only files no order event has touched.
    let seen_by_event = match source {
        Source::Scan => vec![false],
        Source::Events => vec![false, true],
    };
    let target = files::table
        .find(cid)
        .filter(files::status.eq(FileStatus::New))
        .filter(files::seen_by_event.eq_any(seen_by_event));
    let n = diesel::update(target)
        .set((
            files::status.eq(to),
            files::status_reason.eq(reason),
            files::next_attempt_at.eq(next_attempt_at),
            files::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(n == 1)
}

/// The Picker found no sWorker space for a `new` file: it waits as `insufficient_space`, rechecked after a delay
/// that doubles with every wait in a row (`space_waits`), so a full node does not judge the same files every round.
/// Returns the delay, or `None` if the file changed first.
pub fn record_space_wait(
    conn: &mut PgConnection,
    cid: &str,
    source: Source,
    reason: &str,
    policy: &super::pins::RetryPolicy,
) -> Result<Option<chrono::Duration>, DbError> {
    conn.transaction(|conn| {
        let waits: Option<i32> = files::table
            .find(cid)
            .filter(files::status.eq(FileStatus::New))
            .select(files::space_waits)
            .for_update()
            .first(conn)
            .optional()?;
        let Some(waits) = waits else { return Ok(None) };
        let delay = policy.delay(waits + 1);
        if !record_verdict(
            conn,
            cid,
            source,
            FileStatus::InsufficientSpace,
            Some(reason),
            Some(Utc::now() + delay),
        )? {
            return Ok(None);
        }
        diesel::update(files::table.find(cid))
            .set(files::space_waits.eq(waits + 1))
            .execute(conn)?;
        Ok(Some(delay))
    })
}

/// Reserves a lane slot: the file goes `new → queued` and a live pin row is created, in one transaction.
pub fn queue_pin(conn: &mut PgConnection, cid: &str, lane: Lane, size: i64) -> Result<Option<Pin>, DbError> {
    conn.transaction(|conn| {
        if !transition(conn, cid, &[FileStatus::New], FileStatus::Queued, None, None)? {
            return Ok(None);
        }
        let attempt: i32 = files::table.find(cid).select(files::attempts).first(conn)?;
        let pin = diesel::insert_into(pins::table)
            .values((
                pins::cid.eq(cid),
                pins::lane.eq(lane),
                pins::size_bytes.eq(size),
                pins::attempt.eq(attempt + 1),
                pins::status.eq(PinStatus::Queued),
            ))
            .returning(Pin::as_returning())
            .get_result(conn)?;
        Ok(Some(pin))
    })
}

/// Waiting files whose time has come go back to `new`. Returns how many.
pub fn release_due(conn: &mut PgConnection) -> Result<usize, DbError> {
    Ok(diesel::update(
        files::table
            .filter(files::status.eq_any(FileStatus::WAITING.to_vec()))
            .filter(files::next_attempt_at.le(diesel::dsl::now)),
    )
    .set((
        files::status.eq(FileStatus::New),
        files::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?)
}

/// Files still unresolved `days` after their current pursuit began (see `pursued_since`) become `failed`.
pub fn give_up_stale(conn: &mut PgConnection, days: u32) -> Result<usize, DbError> {
    let cutoff = Utc::now() - chrono::Duration::days(i64::from(days));
    Ok(diesel::update(
        files::table
            .filter(files::status.eq_any(FileStatus::WAITING.to_vec()))
            .filter(files::pursued_since.lt(cutoff)),
    )
    .set((
        files::status.eq(FileStatus::Failed),
        files::status_reason.eq(format!("unresolved for over {days} days")),
        files::next_attempt_at.eq(None::<DateTime<Utc>>),
        files::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?)
}

/// Counts per status, every status present (zero included) so dashboards see stable series.
pub fn count_by_status(conn: &mut PgConnection) -> Result<BTreeMap<String, i64>, DbError> {
    use super::schema::file_count_deltas as d;
    // Summed from the trigger-maintained deltas: a few rows, whatever the number of files.
    let rows: Vec<(FileStatus, Option<BigDecimal>)> = d::table
        .group_by(d::status)
        .select((d::status, diesel::dsl::sum(d::n)))
        .load(conn)?;
    let mut out: BTreeMap<String, i64> = FileStatus::ALL.iter().map(|s| (s.to_string(), 0)).collect();
    for (s, n) in rows {
        out.insert(s.to_string(), decimal_count(n));
    }
    Ok(out)
}

/// Files the FilesV2 scanner has seen, from the same deltas.
pub fn count_scanned(conn: &mut PgConnection) -> Result<i64, DbError> {
    use super::schema::file_count_deltas as d;
    let n: Option<BigDecimal> = d::table
        .filter(d::scanned.eq(true))
        .select(diesel::dsl::sum(d::n))
        .first(conn)?;
    Ok(decimal_count(n))
}

fn decimal_count(n: Option<BigDecimal>) -> i64 {
    use bigdecimal::ToPrimitive;
    n.and_then(|n| n.to_i64()).unwrap_or(0)
}

/// Folds the count deltas into one row per (status, reason, scanned). Safe next to writers and to another
/// compaction: rows committed meanwhile are simply left for the next one. Returns the rows removed.
pub fn compact_counts(conn: &mut PgConnection) -> Result<usize, DbError> {
    conn.transaction(|conn| {
        Ok(diesel::sql_query(
            "WITH gone AS (DELETE FROM file_count_deltas RETURNING status, reason, scanned, n),
                  kept AS (INSERT INTO file_count_deltas (status, reason, scanned, n)
                           SELECT status, reason, scanned, sum(n) FROM gone GROUP BY 1, 2, 3 HAVING sum(n) <> 0
                           RETURNING 1)
             SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM kept) AS removed",
        )
        .get_result::<Removed>(conn)?
        .removed as usize)
    })
}

#[derive(QueryableByName)]
struct Removed {
    #[diesel(sql_type = BigInt)]
    removed: i64,
}

/// Orders counted over every owner of every file (what catch-up indexed).
pub fn total_orders(conn: &mut PgConnection) -> Result<i64, DbError> {
    Ok(file_owners::table
        .select(diesel::dsl::sum(file_owners::orders))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0))
}

/// A page of files, newest change first.
pub fn list(
    conn: &mut PgConnection,
    status: Option<FileStatus>,
    reason: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<File>, DbError> {
    let mut q = files::table.select(File::as_select()).into_boxed();
    if let Some(s) = status {
        // A literal, not a parameter: the planner can then use the partial index on reasons (a closed set of
        // enum labels, nothing from the caller reaches the SQL text).
        q = q.filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&format!(
            "files.status = '{}'",
            s.as_str()
        )));
    }
    if let Some(r) = reason {
        // The status page's reason groups (numbers as `N`, see `stats::REASON_KEY_SQL`).
        q = q.filter(
            diesel::dsl::sql::<diesel::sql_types::Bool>(&format!("{} = ", super::stats::REASON_KEY_SQL))
                .bind::<Text, _>(r.to_string()),
        );
    }
    Ok(q.order((files::updated_at.desc(), files::cid.asc()))
        .limit(limit)
        .offset(offset)
        .load(conn)?)
}

/// Everything about one CID.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileDetail {
    pub file: File,
    pub owners: Vec<FileOwner>,
    pub pins: Vec<Pin>,
    pub cleanups: Vec<Cleanup>,
}

/// One file with its owners, pin history and cleanups, for `files show` and the API.
pub fn detail(conn: &mut PgConnection, cid: &str) -> Result<Option<FileDetail>, DbError> {
    let Some(file) = files::table
        .find(cid)
        .select(File::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let owners = file_owners::table
        .filter(file_owners::cid.eq(cid))
        .order(file_owners::first_block.asc())
        .select(FileOwner::as_select())
        .load(conn)?;
    let pins = pins::table
        .filter(pins::cid.eq(cid))
        .order(pins::id.desc())
        .select(Pin::as_select())
        .load(conn)?;
    let cleanups = cleanups::table
        .filter(cleanups::cid.eq(cid))
        .order(cleanups::id.desc())
        .select(Cleanup::as_select())
        .load(conn)?;
    Ok(Some(FileDetail {
        file,
        owners,
        pins,
        cleanups,
    }))
}

/// Statuses an operator may send back to the queue.
pub const RETRYABLE: [FileStatus; 6] = [
    FileStatus::PinError,
    FileStatus::Failed,
    FileStatus::InsufficientSpace,
    FileStatus::PendingReplica,
    FileStatus::Skipped,
    FileStatus::Invalid,
];

/// Sends files back to `new` now with a fresh start (no attempts counted, give-up age from now). `cid` picks one
/// file, `status` all files of a status; returns how many moved.
pub fn retry(conn: &mut PgConnection, cid: Option<&str>, status: Option<FileStatus>) -> Result<usize, DbError> {
    let mut q = diesel::update(files::table)
        .filter(files::status.eq_any(RETRYABLE.to_vec()))
        .into_boxed();
    if let Some(cid) = cid {
        q = q.filter(files::cid.eq(cid.to_string()));
    }
    if let Some(status) = status {
        q = q.filter(files::status.eq(status));
    }
    Ok(q.set((
        files::status.eq(FileStatus::New),
        files::status_reason.eq("operator retry"),
        files::next_attempt_at.eq(None::<DateTime<Utc>>),
        files::attempts.eq(0),
        files::space_waits.eq(0),
        files::pursued_since.eq(diesel::dsl::now),
        files::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?)
}

/// Files whose last attempt failed, most recent first.
pub fn recent_failures(conn: &mut PgConnection, limit: i64) -> Result<Vec<File>, DbError> {
    // The statuses as literals, matching the partial index `files_failures_by_change` (a parameter would leave the
    // planner walking every file, newest first, when there is no failure at all).
    Ok(files::table
        .filter(files::last_error.is_not_null())
        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
            "files.status IN ('pin_error', 'failed', 'insufficient_space')",
        ))
        .order(files::updated_at.desc())
        .limit(limit)
        .select(File::as_select())
        .load(conn)?)
}

/// Scanned files and the scan cursor (when given: the last key stored with every key before it), in one
/// transaction: expiry, replica count and amount are refreshed, and so is the size (`update_replicas` corrects it on
/// chain); new files enter as `new` (found by the scanner); a file closed or cleaned here but alive and unexpired on
/// chain is re-opened (local state repaired, its pending cleanup cancelled); CIDs that are not CIDs are recorded as
/// invalid. A known file whose chain facts did not change is left as it is (a re-scan of an unchanged map writes
/// nothing). Files not yet known are `COPY`ed in, which costs PostgreSQL about a fifth less than the upsert (rows go in
/// by pages, without a speculative insertion each); if the indexer inserts one of them meanwhile, the write is
/// rolled back by the unique key and done again as upserts only.
pub fn upsert_scanned(
    conn: &mut PgConnection,
    rows: &[crate::chain::ScannedFile],
    invalid: &[(String, String)],
    cursor_key: Option<&str>,
    round: i64,
) -> Result<usize, DbError> {
    write_scanned_batch(conn, rows, invalid, cursor_key, round, false).map(|w| w.rows)
}

/// What one scanned write stored: the scanner copies its next write without looking its files up when this one knew
/// none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScannedWrite {
    pub rows: usize,
    /// None of the written files was in `files` before.
    pub all_new: bool,
}

/// [`upsert_scanned`] for the scanner, which knows whether its last write found only new files (a first scan into a
/// young database): then, with `expect_new`, every file is copied in without the look-up of known CIDs, a probe of
/// the primary key per file. A file already there fails the copy on the unique key, and the write is done again with
/// the look-up (and, if the indexer inserted one of them meanwhile, again as upserts only).
pub fn write_scanned_batch(
    conn: &mut PgConnection,
    rows: &[crate::chain::ScannedFile],
    invalid: &[(String, String)],
    cursor_key: Option<&str>,
    round: i64,
    expect_new: bool,
) -> Result<ScannedWrite, DbError> {
    let mut mode = if expect_new {
        ScanWriteMode::CopyAll
    } else {
        ScanWriteMode::CopyNew
    };
    loop {
        match write_scanned(conn, rows, invalid, cursor_key, round, mode) {
            Err(e) if mode != ScanWriteMode::UpsertAll && e.unique_violation().is_some() => {
                log::debug!(target: "smanager::scanner", "a scanned file is already stored ({e}); writing the page again ({mode:?} failed)");
                mode = match mode {
                    ScanWriteMode::CopyAll => ScanWriteMode::CopyNew,
                    _ => ScanWriteMode::UpsertAll,
                };
            }
            r => return r,
        }
    }
}

/// How a scanned write splits its files between `COPY` (new files) and upserts (known ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ScanWriteMode {
    /// Every file copied, none looked up: fails on the unique key if one is known.
    CopyAll,
    /// Known CIDs looked up; the others copied, the known upserted.
    CopyNew,
    /// Every file upserted.
    UpsertAll,
}

/// One attempt of [`write_scanned_batch`].
fn write_scanned(
    conn: &mut PgConnection,
    rows: &[crate::chain::ScannedFile],
    invalid: &[(String, String)],
    cursor_key: Option<&str>,
    round: i64,
    mode: ScanWriteMode,
) -> Result<ScannedWrite, DbError> {
    conn.transaction(|conn| {
        let (fresh, known): (Vec<&crate::chain::ScannedFile>, Vec<&crate::chain::ScannedFile>) = match mode {
            ScanWriteMode::CopyAll => (rows.iter().collect(), Vec::new()),
            ScanWriteMode::CopyNew => {
                let cids: Vec<&str> = rows.iter().map(|r| r.cid.as_str()).collect();
                let present = known_cids(conn, &cids)?;
                rows.iter().partition(|r| !present.contains(&r.cid))
            }
            ScanWriteMode::UpsertAll => (Vec::new(), rows.iter().collect()),
        };
        let all_new = known.is_empty();
        let n = copy_scanned(conn, &fresh)? + upsert_known_scanned(conn, &known)?;
        for (raw, reason) in invalid {
            record_invalid(conn, raw, &format!("FilesV2 scan: {reason}"), None)?;
        }
        if let Some(key) = cursor_key {
            state::advance_scan_cursor(conn, state::SCANNER_CURSOR, key, round)?;
        }
        Ok(ScannedWrite { rows: n, all_new })
    })
}

/// A value in `COPY`'s text format: a CID or an address never holds a backslash, tab or line break, but one must
/// not split a row.
fn copy_text(v: &str) -> std::borrow::Cow<'_, str> {
    if v.contains(['\\', '\t', '\n', '\r']) {
        std::borrow::Cow::Owned(
            v.replace('\\', "\\\\")
                .replace('\t', "\\t")
                .replace('\n', "\\n")
                .replace('\r', "\\r"),
        )
    } else {
        std::borrow::Cow::Borrowed(v)
    }
}

/// Copies scanned files known not to be in `files` yet, as `new` files found by the scanner.
fn copy_scanned(conn: &mut PgConnection, rows: &[&crate::chain::ScannedFile]) -> Result<usize, DbError> {
    use std::io::Write as _;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut text = Vec::with_capacity(rows.len() * 96);
    for r in rows {
        let cid = copy_text(&r.cid);
        writeln!(
            text,
            "{cid}\t{}\t{}\t{}\t{}\tt\tnew",
            i64::try_from(r.size).unwrap_or(i64::MAX),
            r.amount,
            r.expired_at,
            i32::try_from(r.replicas).unwrap_or(i32::MAX)
        )
        .map_err(|e| DbError::Invalid(e.to_string()))?;
    }
    let n = diesel::copy_from(files::table)
        .from_raw_data(
            (
                files::cid,
                files::size_bytes,
                files::amount,
                files::expired_at,
                files::replicas,
                files::seen_by_scan,
                files::status,
            ),
            super::copy_body(&text),
        )
        .execute(conn)?;
    Ok(n)
}

/// Multi-row upsert of scanned files (those already known, on the copying path): see [`upsert_scanned`].
fn upsert_known_scanned(conn: &mut PgConnection, rows: &[&crate::chain::ScannedFile]) -> Result<usize, DbError> {
    use diesel::sql_types::{Array, Int4, Int8};
    if rows.is_empty() {
        return Ok(0);
    }
    let cids: Vec<&str> = rows.iter().map(|r| r.cid.as_str()).collect();
    let sizes: Vec<i64> = rows.iter().map(|r| i64::try_from(r.size).unwrap_or(i64::MAX)).collect();
    let amounts: Vec<BigDecimal> = rows.iter().map(|r| BigDecimal::from(r.amount)).collect();
    let expiries: Vec<i64> = rows.iter().map(|r| i64::from(r.expired_at)).collect();
    let replicas: Vec<i32> = rows
        .iter()
        .map(|r| i32::try_from(r.replicas).unwrap_or(i32::MAX))
        .collect();
    // One statement: the upsert, then (from its own returned rows, with no second lookup of each CID) the
    // pending deletions of files it re-opened, which must not run. A file closed or cleaned here but alive on
    // chain is such a file.
    // A file whose chain facts did not change is not rewritten: every row rewritten would be a new tuple with an
    // entry in each index, so a re-scan of an unchanged map would cost as much as the first scan and bloat `files`.
    diesel::sql_query(
        "WITH up AS (
         INSERT INTO files (cid, size_bytes, amount, expired_at, replicas, seen_by_scan, status)
           SELECT cid, size, amount, expired, replicas, TRUE, 'new'
             FROM UNNEST($1::text[], $2::int8[], $3::numeric[], $4::int8[], $5::int4[])
                  AS t(cid, size, amount, expired, replicas)
           ON CONFLICT (cid) DO UPDATE SET
             amount = EXCLUDED.amount,
             expired_at = EXCLUDED.expired_at,
             replicas = EXCLUDED.replicas,
             seen_by_scan = TRUE,
             size_bytes = EXCLUDED.size_bytes,
             status = CASE WHEN (files.status IN ('closed', 'cleaned')
                            AND (EXCLUDED.expired_at = 0 OR EXCLUDED.expired_at > COALESCE(
                                 (SELECT block_number FROM chain_cursors WHERE name = 'indexer'), 0))) THEN 'new'::file_status ELSE files.status END,
             status_reason = CASE WHEN (files.status IN ('closed', 'cleaned')
                            AND (EXCLUDED.expired_at = 0 OR EXCLUDED.expired_at > COALESCE(
                                 (SELECT block_number FROM chain_cursors WHERE name = 'indexer'), 0))) THEN 'alive on chain (scan)' ELSE files.status_reason END,
             attempts = CASE WHEN (files.status IN ('closed', 'cleaned')
                            AND (EXCLUDED.expired_at = 0 OR EXCLUDED.expired_at > COALESCE(
                                 (SELECT block_number FROM chain_cursors WHERE name = 'indexer'), 0))) THEN 0 ELSE files.attempts END,
             pursued_since = CASE WHEN (files.status IN ('closed', 'cleaned')
                            AND (EXCLUDED.expired_at = 0 OR EXCLUDED.expired_at > COALESCE(
                                 (SELECT block_number FROM chain_cursors WHERE name = 'indexer'), 0))) THEN now() ELSE files.pursued_since END,
             updated_at = CASE WHEN (files.status IN ('closed', 'cleaned')
                            AND (EXCLUDED.expired_at = 0 OR EXCLUDED.expired_at > COALESCE(
                                 (SELECT block_number FROM chain_cursors WHERE name = 'indexer'), 0))) THEN now() WHEN (files.amount, files.expired_at, files.replicas, files.seen_by_scan)
                                    IS DISTINCT FROM (EXCLUDED.amount, EXCLUDED.expired_at, EXCLUDED.replicas, TRUE)
                                OR files.size_bytes <> EXCLUDED.size_bytes
                               THEN now() ELSE files.updated_at END
           WHERE files.status IN ('closed', 'cleaned')
              OR (files.amount, files.expired_at, files.replicas, files.seen_by_scan, files.size_bytes)
                 IS DISTINCT FROM (EXCLUDED.amount, EXCLUDED.expired_at, EXCLUDED.replicas, TRUE, EXCLUDED.size_bytes)
         RETURNING cid, status, status_reason),
         cancelled AS (
           UPDATE cleanups SET status = 'cancelled', last_error = 'cancelled: alive on chain (scan)', updated_at = now()
            WHERE status = 'pending'
              AND cid IN (SELECT cid FROM up WHERE status = 'new' AND status_reason = 'alive on chain (scan)'))
         -- PostgreSQL runs every data-modifying WITH statement to completion, read or not.
         SELECT count(*) AS n FROM up",
    )
    .bind::<Array<Text>, _>(&cids)
    .bind::<Array<Int8>, _>(&sizes)
    .bind::<Array<Numeric>, _>(&amounts)
    .bind::<Array<Int8>, _>(&expiries)
    .bind::<Array<Int4>, _>(&replicas)
    .execute(conn)?;
    Ok(rows.len())
}

/// A block that cannot be decoded after retries: recorded (`kv_state.undecodable_blocks`, logged by the caller) and
/// passed, in the transaction that moves the cursor, so the indexer neither stops forever nor skips it silently.
pub fn record_undecodable_block(conn: &mut PgConnection, number: u64, hash: &str, reason: &str) -> Result<(), DbError> {
    conn.transaction(|conn| {
        let n = block_i64(number)?;
        let mut list: Vec<serde_json::Value> = state::kv_get(conn, state::KV_UNDECODABLE_BLOCKS)?.unwrap_or_default();
        list.push(serde_json::json!({"number": n, "hash": hash, "reason": reason, "at": Utc::now()}));
        if list.len() > 1000 {
            list.remove(0);
        }
        state::kv_set(conn, state::KV_UNDECODABLE_BLOCKS, &list)?;
        state::set_block_cursor(conn, INDEXER_CURSOR, n, hash)
    })
}
