//! Rows and status enums. Status names are what operators see in `smanager files list --status …` and in metrics.

use bigdecimal::BigDecimal;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use super::schema::{chain_cursors, cleanups, file_owners, files, pins};

/// A status string that is not one of the enum's names.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} `{value}` (expected one of: {expected})")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
    pub expected: String,
}

/// Maps a Rust enum onto a PostgreSQL enum type by name, both ways, and gives it `FromStr`/`Display`.
macro_rules! pg_enum {
    ($(#[$meta:meta])* $name:ident, $sql:ty, $kind:literal, { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow, serde::Serialize, serde::Deserialize)]
        #[diesel(sql_type = $sql)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant),* }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The name stored in PostgreSQL and shown to operators.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(UnknownVariant {
                        kind: $kind,
                        value: other.to_string(),
                        expected: [$($text),*].join(", "),
                    }),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl diesel::serialize::ToSql<$sql, diesel::pg::Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>) -> diesel::serialize::Result {
                use std::io::Write;
                out.write_all(self.as_str().as_bytes())?;
                Ok(diesel::serialize::IsNull::No)
            }
        }

        impl diesel::deserialize::FromSql<$sql, diesel::pg::Pg> for $name {
            fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let s = std::str::from_utf8(bytes.as_bytes())?;
                Ok(s.parse::<$name>()?)
            }
        }
    };
}

pg_enum!(
    /// Where a file is in the pipeline; see ARCHITECTURE.md for the transitions.
    FileStatus, super::schema::sql_types::FileStatus, "file status", {
    /// Indexed and waiting for the Picker.
    New => "new",
    /// Not for this node (group slot, probability, size, replicas, lifetime, coordinator); the reason is kept.
    Skipped => "skipped",
    /// No replica on chain yet; rechecked after a backoff.
    PendingReplica => "pending_replica",
    /// Did not fit when picked; retried after a backoff.
    InsufficientSpace => "insufficient_space",
    /// Picked: a pin exists and waits for a Puller slot.
    Queued => "queued",
    /// `pin/add` is running; the sWorker seals as blocks arrive.
    Pinning => "pinning",
    /// Pinned and sealed: the node stores it.
    Sealed => "sealed",
    /// The last attempt failed; retried after a backoff.
    PinError => "pin_error",
    /// Given up (too many attempts or too old); `retry` brings it back.
    Failed => "failed",
    /// Cannot be stored: bad CID, no replica after the deadline, or unreadable chain data.
    Invalid => "invalid",
    /// The order ended on chain; a cleanup record decides what to delete.
    Closed => "closed",
    /// Deleted from the sWorker and IPFS after its order closed.
    Cleaned => "cleaned",
});

impl FileStatus {
    /// Statuses that wait for `next_attempt_at` and then go back to `new`.
    pub const WAITING: [FileStatus; 3] = [
        FileStatus::PendingReplica,
        FileStatus::InsufficientSpace,
        FileStatus::PinError,
    ];
    /// Statuses in which this node may hold (part of) the file, so closing it needs a cleanup.
    pub const HELD: [FileStatus; 5] = [
        FileStatus::Queued,
        FileStatus::Pinning,
        FileStatus::Sealed,
        FileStatus::PinError,
        FileStatus::Failed,
    ];
}

pg_enum!(
    /// One pin attempt's state; `queued` and `pinning` are live and carry a lease.
    PinStatus, super::schema::sql_types::PinStatus, "pin status", {
    /// Created by the Picker; waiting for a Puller slot.
    Queued => "queued",
    /// `pin/add` is running under a lease.
    Pinning => "pinning",
    /// `pin/add` returned: the file is sealed.
    Pinned => "pinned",
    /// `pin/add` failed, timed out or stalled.
    Failed => "failed",
    /// Cancelled on purpose: its seal stalled, or the order closed.
    Aborted => "aborted",
});

impl PinStatus {
    /// Pins that hold a lane slot and reserved bytes.
    pub const LIVE: [PinStatus; 2] = [PinStatus::Queued, PinStatus::Pinning];
}

pg_enum!(
    /// Small and large files are pulled in separate lanes so a few big files cannot starve the rest.
    Lane, super::schema::sql_types::PinLane, "lane", {
    /// Files under 5 GiB: 60% of `maxPendingTasks`.
    Small => "small",
    /// Files of 5 GiB or more: 40% of `maxPendingTasks`.
    Large => "large",
});

pg_enum!(
    /// A deletion request's state.
    CleanupStatus, super::schema::sql_types::CleanupStatus, "cleanup status", {
    /// Waiting to be deleted (with backoff after failures).
    Pending => "pending",
    /// Deleted, or the sWorker did not have it (404).
    Done => "done",
    /// Given up after the configured number of attempts.
    Failed => "failed",
    /// The CID was ordered again before it was deleted.
    Cancelled => "cancelled",
});

/// One CID and everything known about it.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = files, check_for_backend(diesel::pg::Pg))]
pub struct File {
    pub cid: String,
    pub size_bytes: i64,
    pub tips: BigDecimal,
    pub amount: BigDecimal,
    pub expired_at: i64,
    pub replicas: i32,
    pub seen_by_event: bool,
    pub seen_by_scan: bool,
    pub first_seen_block: Option<i64>,
    pub last_order_block: Option<i64>,
    pub status: FileStatus,
    pub status_reason: Option<String>,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the current attempt to store it began (first indexing, an order after a close, or an operator retry);
    /// the give-up and no-replica ages count from here.
    pub pursued_since: DateTime<Utc>,
    /// Rounds in a row it waited for sWorker space; its recheck backs off with them.
    pub space_waits: i32,
}

/// An account that ordered a CID.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = file_owners, check_for_backend(diesel::pg::Pg))]
pub struct FileOwner {
    pub cid: String,
    pub owner: String,
    pub orders: i32,
    pub first_block: i64,
    pub last_block: i64,
}

/// One attempt to pin (and so seal) a file.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = pins, check_for_backend(diesel::pg::Pg))]
pub struct Pin {
    pub id: i64,
    pub cid: String,
    pub status: PinStatus,
    pub lane: Lane,
    pub size_bytes: i64,
    pub attempt: i32,
    pub lease_holder: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub progress: i64,
    pub sealed_bytes: i64,
    pub seal_checked_at: Option<DateTime<Utc>>,
    pub seal_stalls: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A request to delete a closed file from the sWorker.
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = cleanups, check_for_backend(diesel::pg::Pg))]
pub struct Cleanup {
    pub id: i64,
    pub cid: String,
    pub status: CleanupStatus,
    pub reason: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub done_at: Option<DateTime<Utc>>,
}

/// A named position in the chain (indexer block, scanner key).
#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = chain_cursors, check_for_backend(diesel::pg::Pg))]
pub struct Cursor {
    pub name: String,
    pub block_number: Option<i64>,
    pub block_hash: Option<String>,
    pub scan_key: Option<String>,
    pub scan_round: i64,
    pub updated_at: DateTime<Utc>,
}
