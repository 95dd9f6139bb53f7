//! Chain cursors and small key-value facts (chain head and time, group membership, node count, pause flag).

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::{de::DeserializeOwned, Serialize};

use super::schema::{chain_cursors, kv_state};
use super::{Cursor, DbError};

/// Cursor of the event indexer: the last finalized block whose rows are all committed.
pub const INDEXER_CURSOR: &str = "indexer";
/// Cursor of the FilesV2 scanner: the last key whose value was stored.
pub const SCANNER_CURSOR: &str = "scanner";

/// kv key: `{number, hash, timestamp_ms}` of the newest finalized block the indexer has seen.
pub const KV_CHAIN_HEAD: &str = "chain_head";
/// kv key: `{number, seen_at}` of the newest finalized head the chain reported (ahead of the cursor while catching up).
pub const KV_FINALIZED: &str = "chain_finalized";
/// kv key: [`GroupInfo`].
pub const KV_GROUP: &str = "group";
/// kv key: number of live nodes (work reports in the last slots).
pub const KV_NODE_COUNT: &str = "node_count";
/// kv key: blocks that could not be decoded, `[{number, hash, reason, at}]`, kept for operators.
pub const KV_UNDECODABLE_BLOCKS: &str = "undecodable_blocks";
/// kv key: when the FilesV2 scan round in progress began (RFC 3339).
pub const KV_SCAN_ROUND_STARTED: &str = "scan_round_started";
/// kv key: when the last complete FilesV2 scan round began (RFC 3339): orders in undecodable blocks recorded
/// before it have been recovered from storage.
pub const KV_LAST_FULL_SCAN_STARTED: &str = "last_full_scan_started";
/// kv key: when the last complete FilesV2 scan round ended (RFC 3339): a restarted scanner rests out the rest of
/// its cooldown instead of rescanning every file at each start.
pub const KV_LAST_FULL_SCAN_DONE: &str = "last_full_scan_done";
/// kv key: `true` while an operator paused picking.
pub const KV_PICKING_PAUSED: &str = "picking_paused";
/// kv key: since when the Crust node reports itself syncing (absent or null when it does not).
pub const KV_NODE_SYNCING: &str = "node_syncing_since";

/// The finalized head as last seen, with its time, so the picker can estimate lifetimes without asking the chain.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct ChainHead {
    pub number: i64,
    pub hash: String,
    /// `Timestamp.Now` of that block, in ms.
    pub timestamp_ms: Option<i64>,
}

/// The newest finalized head seen, and when: the indexer's lag and the chain's freshness come from it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Finalized {
    pub number: i64,
    pub seen_at: DateTime<Utc>,
}

/// This node's place in its group: the sorted members and our index among them.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Default)]
pub struct GroupInfo {
    /// The group owner (`Swork.Identities(self).group`); `None` when the node has no group.
    pub owner: Option<String>,
    /// Members in raw key-byte order (the chain's BTreeSet order).
    pub members: Vec<String>,
    /// Our index in `members`.
    pub node_index: Option<u32>,
    /// When the indexer last refreshed it.
    pub refreshed_at: Option<DateTime<Utc>>,
}

/// One named cursor, if it was ever written.
pub fn cursor(conn: &mut PgConnection, name: &str) -> Result<Option<Cursor>, DbError> {
    Ok(chain_cursors::table
        .find(name)
        .select(Cursor::as_select())
        .first(conn)
        .optional()?)
}

/// Every cursor, for `status` and the API.
pub fn all_cursors(conn: &mut PgConnection) -> Result<Vec<Cursor>, DbError> {
    Ok(chain_cursors::table
        .order(chain_cursors::name)
        .select(Cursor::as_select())
        .load(conn)?)
}

/// Moves a block cursor; call it inside the transaction that wrote the block's rows.
pub fn set_block_cursor(conn: &mut PgConnection, name: &str, number: i64, hash: &str) -> Result<(), DbError> {
    diesel::insert_into(chain_cursors::table)
        .values((
            chain_cursors::name.eq(name),
            chain_cursors::block_number.eq(number),
            chain_cursors::block_hash.eq(hash),
        ))
        .on_conflict(chain_cursors::name)
        .do_update()
        .set((
            chain_cursors::block_number.eq(number),
            chain_cursors::block_hash.eq(hash),
            chain_cursors::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Moves a scan cursor (`None` = start of a new round).
pub fn set_scan_cursor(conn: &mut PgConnection, name: &str, key: Option<&str>, round: i64) -> Result<(), DbError> {
    diesel::insert_into(chain_cursors::table)
        .values((
            chain_cursors::name.eq(name),
            chain_cursors::scan_key.eq(key),
            chain_cursors::scan_round.eq(round),
        ))
        .on_conflict(chain_cursors::name)
        .do_update()
        .set((
            chain_cursors::scan_key.eq(key),
            chain_cursors::scan_round.eq(round),
            chain_cursors::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
    Ok(())
}

/// Moves a scan cursor forward within `round` only: a page write that commits late (it outlived a restart of the
/// scanner, or the round finished meanwhile) can neither move the cursor back nor reopen a finished round. Keys are
/// lowercase hex of storage keys, so text order is key order.
pub fn advance_scan_cursor(conn: &mut PgConnection, name: &str, key: &str, round: i64) -> Result<(), DbError> {
    diesel::sql_query(
        "INSERT INTO chain_cursors (name, scan_key, scan_round) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET scan_key = EXCLUDED.scan_key, updated_at = now()
          WHERE chain_cursors.scan_round = EXCLUDED.scan_round
            AND (chain_cursors.scan_key IS NULL OR chain_cursors.scan_key COLLATE \"C\" < EXCLUDED.scan_key COLLATE \"C\")",
    )
    .bind::<diesel::sql_types::Text, _>(name)
    .bind::<diesel::sql_types::Text, _>(key)
    .bind::<diesel::sql_types::BigInt, _>(round)
    .execute(conn)?;
    Ok(())
}

/// Reads a JSON value from the key-value state; `None` when the key was never written.
pub fn kv_get<T: DeserializeOwned>(conn: &mut PgConnection, key: &str) -> Result<Option<T>, DbError> {
    let v: Option<serde_json::Value> = kv_state::table
        .find(key)
        .select(kv_state::value)
        .first(conn)
        .optional()?;
    match v {
        None => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| DbError::Invalid(format!("kv_state `{key}` holds unexpected JSON: {e}"))),
    }
}

/// Writes a JSON value to the key-value state, replacing what was there.
pub fn kv_set<T: Serialize>(conn: &mut PgConnection, key: &str, value: &T) -> Result<(), DbError> {
    let v = serde_json::to_value(value).map_err(|e| DbError::Invalid(e.to_string()))?;
    diesel::insert_into(kv_state::table)
        .values((kv_state::key.eq(key), kv_state::value.eq(&v)))
        .on_conflict(kv_state::key)
        .do_update()
        .set((kv_state::value.eq(&v), kv_state::updated_at.eq(diesel::dsl::now)))
        .execute(conn)?;
    Ok(())
}

/// Something an operator must look at, shown by readyz, the status page and `smanager status`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct Alarm {
    /// What kind of alarm (`undecodable_block`).
    pub kind: String,
    pub block: Option<i64>,
    pub detail: String,
    pub since: Option<DateTime<Utc>>,
}

/// Undecodable blocks whose orders no complete FilesV2 scan has recovered yet: each is an alarm until a scan round
/// that began after it was recorded has finished.
pub fn unrecovered_undecodable(conn: &mut PgConnection) -> Result<Vec<Alarm>, DbError> {
    let blocks: Vec<serde_json::Value> = kv_get(conn, KV_UNDECODABLE_BLOCKS)?.unwrap_or_default();
    let recovered_up_to: Option<DateTime<Utc>> = kv_get(conn, KV_LAST_FULL_SCAN_STARTED)?;
    Ok(blocks
        .iter()
        .filter_map(|b| {
            let at = b["at"]
                .as_str()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            if let (Some(at), Some(done)) = (at, recovered_up_to) {
                if at < done {
                    return None;
                }
            }
            Some(Alarm {
                kind: "undecodable_block".into(),
                block: b["number"].as_i64(),
                detail: format!(
                    "block could not be decoded ({}); a FilesV2 scan is recovering its orders",
                    b["reason"].as_str().unwrap_or("unknown reason")
                ),
                since: at,
            })
        })
        .collect())
}
