//! One snapshot of the pipeline, read in one place for `smanager status`, the JSON API, the status page and the
//! service-level metrics.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::pins::LaneUsage;
use super::schema::files;
use super::state::{self, ChainHead, Finalized, GroupInfo};
use super::{cleanups, files as file_q, pins, Cursor, DbError, PinStatus};

/// Counts, cursors and chain position.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub files: BTreeMap<String, i64>,
    pub lanes: LaneUsage,
    pub cleanups: BTreeMap<String, i64>,
    pub cursors: Vec<Cursor>,
    pub indexed_block: Option<i64>,
    pub finalized_block: Option<i64>,
    pub finalized_seen_at: Option<DateTime<Utc>>,
    pub lag_blocks: Option<i64>,
    pub chain_head: Option<ChainHead>,
    pub group: Option<GroupInfo>,
    pub picking_paused: bool,
    /// What needs an operator's attention now (undecodable blocks not yet recovered by a scan).
    pub alarms: Vec<state::Alarm>,
    /// Files found by the FilesV2 scanner.
    pub scanned_files: i64,
    /// Pins that ended in the last hour, by final status.
    pub last_hour: BTreeMap<String, i64>,
    pub at: DateTime<Utc>,
}

/// Everything `status`, `/api/stats` and the metrics show, in one read.
pub fn snapshot(conn: &mut PgConnection) -> Result<Stats, DbError> {
    let files = file_q::count_by_status(conn)?;
    let lanes = pins::lane_usage(conn)?;
    let mut cl: BTreeMap<String, i64> = super::CleanupStatus::ALL.iter().map(|s| (s.to_string(), 0)).collect();
    for (s, n) in cleanups::count_by_status(conn)? {
        cl.insert(s.to_string(), n);
    }
    let cursors = state::all_cursors(conn)?;
    let indexed_block = cursors
        .iter()
        .find(|c| c.name == state::INDEXER_CURSOR)
        .and_then(|c| c.block_number);
    let finalized: Option<Finalized> = state::kv_get(conn, state::KV_FINALIZED)?;
    let lag_blocks = match (&finalized, indexed_block) {
        (Some(f), Some(i)) => Some((f.number - i).max(0)),
        _ => None,
    };
    let scanned_files = files::table
        .filter(files::seen_by_scan.eq(true))
        .count()
        .get_result(conn)?;
    let mut last_hour: BTreeMap<String, i64> = [PinStatus::Pinned, PinStatus::Failed, PinStatus::Aborted]
        .iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    for (s, n) in pins::finished_since(conn, Utc::now() - chrono::Duration::hours(1))? {
        last_hour.insert(s.to_string(), n);
    }
    Ok(Stats {
        files,
        lanes,
        cleanups: cl,
        indexed_block,
        finalized_block: finalized.as_ref().map(|f| f.number),
        finalized_seen_at: finalized.as_ref().map(|f| f.seen_at),
        lag_blocks,
        cursors,
        chain_head: state::kv_get(conn, state::KV_CHAIN_HEAD)?,
        group: state::kv_get(conn, state::KV_GROUP)?,
        picking_paused: state::kv_get(conn, state::KV_PICKING_PAUSED)?.unwrap_or(false),
        alarms: state::unrecovered_undecodable(conn)?,
        scanned_files,
        last_hour,
        at: Utc::now(),
    })
}
