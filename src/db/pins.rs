//! The `pins` table: leases on in-flight pins, their outcome, seal progress.
//!
//! A live pin (`queued` or `pinning`) holds a lane slot and its file's size in reserved bytes. Its lease names the
//! process driving it; a lease that is ours or has expired can be (re-)adopted, so a crash never leaves a pin stuck
//! and a partial unique index guarantees one live pin per CID.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{files, pins};
use super::{DbError, FileStatus, Lane, Pin, PinStatus};

/// Live slots and reserved bytes per lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LaneUsage {
    pub small: i64,
    pub large: i64,
    pub reserved_bytes: i64,
}

/// Pins and reserved bytes per lane, for the Picker's capacity gates and the metrics.
pub fn lane_usage(conn: &mut PgConnection) -> Result<LaneUsage, DbError> {
    let rows: Vec<(Lane, i64, Option<bigdecimal::BigDecimal>)> = pins::table
        .filter(pins::status.eq_any(PinStatus::LIVE.to_vec()))
        .group_by(pins::lane)
        .select((
            pins::lane,
            diesel::dsl::count_star(),
            diesel::dsl::sum(pins::size_bytes),
        ))
        .load(conn)?;
    let mut u = LaneUsage::default();
    for (lane, n, bytes) in rows {
        match lane {
            Lane::Small => u.small = n,
            Lane::Large => u.large = n,
        }
        u.reserved_bytes += bytes.and_then(|b| bigdecimal::ToPrimitive::to_i64(&b)).unwrap_or(0);
    }
    Ok(u)
}

/// Live pins this holder may drive: unleased, leased by it, or with an expired lease.
pub fn adoptable(conn: &mut PgConnection, holder: &str) -> Result<Vec<Pin>, DbError> {
    Ok(pins::table
        .filter(pins::status.eq_any(PinStatus::LIVE.to_vec()))
        .filter(
            pins::lease_holder
                .is_null()
                .or(pins::lease_holder.eq(holder))
                .or(pins::lease_expires_at.lt(diesel::dsl::now)),
        )
        .order(pins::id.asc())
        .select(Pin::as_select())
        .load(conn)?)
}

/// Takes (or re-takes) the lease on a live pin and marks it and its file `pinning`. `None` if another live holder
/// owns it or it is no longer live.
pub fn claim(conn: &mut PgConnection, pin_id: i64, holder: &str, lease_secs: u64) -> Result<Option<Pin>, DbError> {
    let until = Utc::now() + chrono::Duration::seconds(lease_secs as i64);
    conn.transaction(|conn| {
        let pin: Option<Pin> = diesel::update(
            pins::table
                .find(pin_id)
                .filter(pins::status.eq_any(PinStatus::LIVE.to_vec()))
                .filter(
                    pins::lease_holder
                        .is_null()
                        .or(pins::lease_holder.eq(holder))
                        .or(pins::lease_expires_at.lt(diesel::dsl::now)),
                ),
        )
        .set((
            pins::status.eq(PinStatus::Pinning),
            pins::lease_holder.eq(holder),
            pins::lease_expires_at.eq(until),
            pins::started_at.eq(Some(Utc::now())),
            pins::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Pin::as_returning())
        .get_result(conn)
        .optional()?;
        if let Some(p) = &pin {
            diesel::update(files::table.find(&p.cid).filter(files::status.eq(FileStatus::Queued)))
                .set((
                    files::status.eq(FileStatus::Pinning),
                    files::updated_at.eq(diesel::dsl::now),
                ))
                .execute(conn)?;
        }
        Ok(pin)
    })
}

/// Extends the leases of the pins this holder is driving; returns how many were still ours.
pub fn renew(conn: &mut PgConnection, holder: &str, ids: &[i64], lease_secs: u64) -> Result<usize, DbError> {
    let until = Utc::now() + chrono::Duration::seconds(lease_secs as i64);
    Ok(diesel::update(
        pins::table
            .filter(pins::id.eq_any(ids.to_vec()))
            .filter(pins::lease_holder.eq(holder))
            .filter(pins::status.eq_any(PinStatus::LIVE.to_vec())),
    )
    .set((pins::lease_expires_at.eq(until), pins::updated_at.eq(diesel::dsl::now)))
    .execute(conn)?)
}

/// Lets go of this holder's leases at shutdown so the next start re-adopts them at once.
pub fn release_leases(conn: &mut PgConnection, holder: &str) -> Result<usize, DbError> {
    Ok(diesel::update(
        pins::table
            .filter(pins::lease_holder.eq(holder))
            .filter(pins::status.eq_any(PinStatus::LIVE.to_vec())),
    )
    .set((
        pins::lease_holder.eq(None::<String>),
        pins::lease_expires_at.eq(None::<DateTime<Utc>>),
        pins::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?)
}

/// Records streamed `pin/add` progress.
pub fn record_progress(conn: &mut PgConnection, pin_id: i64, progress: i64) -> Result<(), DbError> {
    diesel::update(pins::table.find(pin_id))
        .set((pins::progress.eq(progress), pins::updated_at.eq(diesel::dsl::now)))
        .execute(conn)?;
    Ok(())
}

/// `pin/add` returned: on Crust IPFS that means every block was sealed. The pin ends `pinned`, the file `sealed`.
pub fn finish_ok(conn: &mut PgConnection, pin_id: i64) -> Result<bool, DbError> {
    conn.transaction(|conn| {
        let pin: Option<Pin> = diesel::update(
            pins::table
                .find(pin_id)
                .filter(pins::status.eq_any(PinStatus::LIVE.to_vec())),
        )
        .set((
            pins::status.eq(PinStatus::Pinned),
            pins::finished_at.eq(Some(Utc::now())),
            pins::lease_holder.eq(None::<String>),
            pins::lease_expires_at.eq(None::<DateTime<Utc>>),
            pins::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Pin::as_returning())
        .get_result(conn)
        .optional()?;
        let Some(pin) = pin else { return Ok(false) };
        diesel::update(
            files::table
                .find(&pin.cid)
                .filter(files::status.eq_any(vec![FileStatus::Queued, FileStatus::Pinning])),
        )
        .set((
            files::status.eq(FileStatus::Sealed),
            files::status_reason.eq(None::<String>),
            files::last_error.eq(None::<String>),
            files::attempts.eq(pin.attempt),
            files::next_attempt_at.eq(None::<DateTime<Utc>>),
            files::space_waits.eq(0),
            files::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
        Ok(true)
    })
}

/// How a failed pin is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// An attempt failed; retry with backoff until attempts run out.
    Error,
    /// The sWorker is out of space: wait, do not count against attempts as a fault of the file.
    NoSpace,
    /// Aborted on purpose (order closed, operator, shutdown of a cancelled seal): the file is not blamed.
    Aborted,
}

/// Retry policy applied when a pin fails.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base_delay_secs: u64,
    pub max_delay_secs: u64,
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// Exponential backoff: base × 2^(attempt − 1), capped.
    pub fn delay(&self, attempt: i32) -> chrono::Duration {
        let exp = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(30);
        let secs = self
            .base_delay_secs
            .saturating_mul(1u64 << exp)
            .min(self.max_delay_secs);
        chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
    }
}

/// Ends a live pin with an error and decides the file's fate (`pin_error` with backoff, `insufficient_space`, or
/// `failed` once attempts are exhausted). Returns the file's new status, or `None` if the pin was no longer live.
pub fn finish_err(
    conn: &mut PgConnection,
    pin_id: i64,
    error: &str,
    kind: FailKind,
    policy: &RetryPolicy,
) -> Result<Option<FileStatus>, DbError> {
    conn.transaction(|conn| {
        let pin_status = if kind == FailKind::Aborted {
            PinStatus::Aborted
        } else {
            PinStatus::Failed
        };
        let pin: Option<Pin> = diesel::update(
            pins::table
                .find(pin_id)
                .filter(pins::status.eq_any(PinStatus::LIVE.to_vec())),
        )
        .set((
            pins::status.eq(pin_status),
            pins::error.eq(error),
            pins::finished_at.eq(Some(Utc::now())),
            pins::lease_holder.eq(None::<String>),
            pins::lease_expires_at.eq(None::<DateTime<Utc>>),
            pins::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Pin::as_returning())
        .get_result(conn)
        .optional()?;
        let Some(pin) = pin else { return Ok(None) };
        // Only real failures spend an attempt: a full sWorker or an abort by our own Sealer, Cleanup or operator
        // is not the file's fault.
        let attempts = match kind {
            FailKind::Error => pin.attempt,
            FailKind::NoSpace | FailKind::Aborted => (pin.attempt - 1).max(0),
        };
        let space_waits: i32 = files::table.find(&pin.cid).select(files::space_waits).first(conn)?;
        let (status, next) = match kind {
            FailKind::NoSpace => (
                FileStatus::InsufficientSpace,
                Some(Utc::now() + policy.delay(space_waits + 1)),
            ),
            FailKind::Aborted => (FileStatus::PinError, Some(Utc::now() + policy.delay(1))),
            FailKind::Error if attempts >= policy.max_attempts as i32 => (FileStatus::Failed, None),
            FailKind::Error => (FileStatus::PinError, Some(Utc::now() + policy.delay(attempts))),
        };
        // Only files still in the pipeline move: a file closed meanwhile stays closed for cleanup.
        diesel::update(
            files::table
                .find(&pin.cid)
                .filter(files::status.eq_any(vec![FileStatus::Queued, FileStatus::Pinning])),
        )
        .set((
            files::status.eq(status),
            files::status_reason.eq(match kind {
                FailKind::NoSpace => Some("sWorker out of space"),
                FailKind::Aborted => Some("aborted"),
                FailKind::Error => None,
            }),
            files::last_error.eq(error),
            files::attempts.eq(attempts),
            files::next_attempt_at.eq(next),
            files::space_waits.eq(space_waits + i32::from(kind == FailKind::NoSpace)),
            files::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
        Ok(Some(status))
    })
}

/// Live pins, for the sealer to follow.
pub fn live(conn: &mut PgConnection) -> Result<Vec<Pin>, DbError> {
    Ok(pins::table
        .filter(pins::status.eq_any(PinStatus::LIVE.to_vec()))
        .order(pins::id.asc())
        .select(Pin::as_select())
        .load(conn)?)
}

/// Stores the sealed size the sWorker reports for a live pin; returns the number of checks in a row it did not grow.
pub fn record_seal_progress(conn: &mut PgConnection, pin_id: i64, sealed_bytes: i64) -> Result<i32, DbError> {
    conn.transaction(|conn| {
        let (prev, stalls): (i64, i32) = pins::table
            .find(pin_id)
            .select((pins::sealed_bytes, pins::seal_stalls))
            .for_update()
            .first(conn)?;
        let stalls = if sealed_bytes > prev { 0 } else { stalls + 1 };
        diesel::update(pins::table.find(pin_id))
            .set((
                pins::sealed_bytes.eq(sealed_bytes.max(prev)),
                pins::seal_stalls.eq(stalls),
                pins::seal_checked_at.eq(Some(Utc::now())),
                pins::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)?;
        Ok(stalls)
    })
}

/// Recent pins, newest first.
pub fn recent(conn: &mut PgConnection, limit: i64) -> Result<Vec<Pin>, DbError> {
    Ok(pins::table
        .order(pins::id.desc())
        .limit(limit)
        .select(Pin::as_select())
        .load(conn)?)
}

/// Pins that ended since `since`, counted by final status (throughput on the status page).
pub fn finished_since(conn: &mut PgConnection, since: DateTime<Utc>) -> Result<Vec<(PinStatus, i64)>, DbError> {
    Ok(pins::table
        .filter(pins::finished_at.ge(since))
        .group_by(pins::status)
        .select((pins::status, diesel::dsl::count_star()))
        .load(conn)?)
}
