//! One snapshot of the pipeline, read in one place for `smanager status`, the JSON API, the status page and the
//! service-level metrics.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::pins::LaneUsage;
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
    /// Since when the Crust node reports itself syncing; indexing waits meanwhile.
    pub node_syncing_since: Option<DateTime<Utc>>,
    /// What needs an operator's attention now (undecodable blocks not yet recovered by a scan).
    pub alarms: Vec<state::Alarm>,
    /// Files found by the FilesV2 scanner.
    pub scanned_files: i64,
    /// Pins that ended in the last hour, by final status.
    pub last_hour: BTreeMap<String, i64>,
    /// Why files are not stored: skip, wait and failure reasons with their counts (filled by [`operator_view`] for
    /// the JSON API and the status page, not on every readiness probe or scrape).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<ReasonCount>>,
    /// Files and bytes sealed per hour over the last 24 hours, oldest first (24 buckets; [`operator_view`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_24h: Option<Vec<HourBucket>>,
    pub at: DateTime<Utc>,
}

/// Files of one status sharing one reason. Numbers in reasons are replaced by `N` (`expires in N days`), so files
/// skipped by the same rule count together; `files?status=…&reason=…` lists them.
#[derive(Debug, Clone, Serialize, QueryableByName, PartialEq)]
pub struct ReasonCount {
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub status: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub reason: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub files: i64,
}

/// Pins sealed in one hour.
#[derive(Debug, Clone, Serialize, QueryableByName, PartialEq)]
pub struct HourBucket {
    /// The hour's start.
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    pub hour: DateTime<Utc>,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub files: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub bytes: i64,
}

/// [`snapshot`] plus what only an operator looking at the status page needs: reasons with counts and 24 hours of seals.
pub fn operator_view(conn: &mut PgConnection) -> Result<Stats, DbError> {
    let mut st = snapshot(conn)?;
    st.reasons = Some(reasons(conn)?);
    st.sealed_24h = Some(sealed_per_hour(conn, Utc::now())?);
    Ok(st)
}

/// The SQL that turns a file's reason into its group key (the migration's `smanager_reason_key`, also behind the
/// count deltas and the reason index); `files::list` filters with the same expression.
pub const REASON_KEY_SQL: &str = "smanager_reason_key(files.status, files.status_reason, files.last_error)";

/// Reasons with counts, most files first, from the trigger-maintained count deltas.
pub fn reasons(conn: &mut PgConnection) -> Result<Vec<ReasonCount>, DbError> {
    Ok(diesel::sql_query(
        "SELECT status::text AS status, reason, sum(n)::int8 AS files FROM file_count_deltas \
         WHERE reason <> '' GROUP BY 1, 2 HAVING sum(n) > 0 ORDER BY 3 DESC, 1, 2 LIMIT 100",
    )
    .load(conn)?)
}

/// Files and bytes sealed per hour for the 24 hours up to `now`, zero-filled.
pub fn sealed_per_hour(conn: &mut PgConnection, now: DateTime<Utc>) -> Result<Vec<HourBucket>, DbError> {
    Ok(diesel::sql_query(
        "SELECT h.hour AS hour, count(p.id) AS files, COALESCE(sum(p.size_bytes), 0)::int8 AS bytes \
         FROM generate_series(date_trunc('hour', $1::timestamptz) - interval '23 hours', date_trunc('hour', $1::timestamptz), interval '1 hour') AS h(hour) \
         LEFT JOIN pins p ON p.status = 'pinned' AND p.finished_at >= h.hour AND p.finished_at < h.hour + interval '1 hour' \
         GROUP BY h.hour ORDER BY h.hour",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(now)
    .load(conn)?)
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
    let scanned_files = file_q::count_scanned(conn)?;
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
        node_syncing_since: state::kv_get::<Option<DateTime<Utc>>>(conn, state::KV_NODE_SYNCING)?.flatten(),
        alarms: state::unrecovered_undecodable(conn)?,
        scanned_files,
        last_hour,
        reasons: None,
        sealed_24h: None,
        at: Utc::now(),
    })
}

/// The 24-hour counts of TypeScript's telemetry report.
#[derive(Debug, Clone, Default, PartialEq, QueryableByName)]
pub struct TelemetryCounts {
    /// Pins in flight now (TypeScript: pins `sealing`).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub sealing: i64,
    /// Pins sealed since `since`.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub sealed: i64,
    /// Bytes of the pins sealed since `since`.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub sealed_bytes: i64,
    /// Pins failed since `since`.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub failed: i64,
    /// Files waiting to be picked (TypeScript's pending statuses: new, pending_replica, insufficient_space).
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub pending: i64,
    /// Their bytes.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub pending_bytes: i64,
    /// Cleanups done since `since`.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub deleted: i64,
}

/// Counts for the telemetry report, pins and cleanups since `since`.
pub fn telemetry_counts(conn: &mut PgConnection, since: DateTime<Utc>) -> Result<TelemetryCounts, DbError> {
    Ok(diesel::sql_query(
        "SELECT \
           (SELECT count(*) FROM pins WHERE status IN ('queued', 'pinning')) AS sealing, \
           (SELECT count(*) FROM pins WHERE status = 'pinned' AND finished_at > $1) AS sealed, \
           (SELECT COALESCE(sum(size_bytes), 0)::int8 FROM pins WHERE status = 'pinned' AND finished_at > $1) AS sealed_bytes, \
           (SELECT count(*) FROM pins WHERE status = 'failed' AND finished_at > $1) AS failed, \
           (SELECT count(*) FROM files WHERE status IN ('new', 'pending_replica', 'insufficient_space')) AS pending, \
           (SELECT COALESCE(sum(size_bytes), 0)::int8 FROM files WHERE status IN ('new', 'pending_replica', 'insufficient_space')) AS pending_bytes, \
           (SELECT count(*) FROM cleanups WHERE status = 'done' AND done_at > $1) AS deleted",
    )
    .bind::<diesel::sql_types::Timestamptz, _>(since)
    .get_result(conn)?)
}
