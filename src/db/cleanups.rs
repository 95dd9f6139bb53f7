//! The `cleanups` table: deletion requests for closed files, retried with backoff.

use chrono::Utc;
use diesel::prelude::*;

use super::pins::RetryPolicy;
use super::schema::{cleanups, files};
use super::{Cleanup, CleanupStatus, DbError, FileStatus};

/// Pending cleanups whose time has come, oldest first.
pub fn due(conn: &mut PgConnection, limit: i64) -> Result<Vec<Cleanup>, DbError> {
    Ok(cleanups::table
        .filter(cleanups::status.eq(CleanupStatus::Pending))
        .filter(cleanups::next_attempt_at.le(diesel::dsl::now))
        .order((cleanups::next_attempt_at.asc(), cleanups::id.asc()))
        .limit(limit)
        .select(Cleanup::as_select())
        .load(conn)?)
}

/// Whether the file has a live order again (then nothing may be deleted).
pub fn file_is_live(conn: &mut PgConnection, cid: &str) -> Result<bool, DbError> {
    let status: Option<FileStatus> = files::table.find(cid).select(files::status).first(conn).optional()?;
    Ok(!matches!(
        status,
        None | Some(FileStatus::Closed) | Some(FileStatus::Cleaned)
    ))
}

/// The sWorker deleted the file (or never had it): the request is done and a closed file becomes `cleaned`.
pub fn finish_ok(conn: &mut PgConnection, id: i64, note: Option<&str>) -> Result<bool, DbError> {
    conn.transaction(|conn| {
        let done: Option<Cleanup> = diesel::update(
            cleanups::table
                .find(id)
                .filter(cleanups::status.eq(CleanupStatus::Pending)),
        )
        .set((
            cleanups::status.eq(CleanupStatus::Done),
            cleanups::attempts.eq(cleanups::attempts + 1),
            cleanups::last_error.eq(note),
            cleanups::done_at.eq(Some(Utc::now())),
            cleanups::updated_at.eq(diesel::dsl::now),
        ))
        .returning(Cleanup::as_returning())
        .get_result(conn)
        .optional()?;
        let Some(done) = done else { return Ok(false) };
        diesel::update(
            files::table
                .find(&done.cid)
                .filter(files::status.eq(FileStatus::Closed)),
        )
        .set((
            files::status.eq(FileStatus::Cleaned),
            files::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
        Ok(true)
    })
}

/// A cleanup that must not run because the file was ordered again.
pub fn cancel(conn: &mut PgConnection, id: i64, why: &str) -> Result<(), DbError> {
    diesel::update(
        cleanups::table
            .find(id)
            .filter(cleanups::status.eq(CleanupStatus::Pending)),
    )
    .set((
        cleanups::status.eq(CleanupStatus::Cancelled),
        cleanups::last_error.eq(why),
        cleanups::updated_at.eq(diesel::dsl::now),
    ))
    .execute(conn)?;
    Ok(())
}

/// The chain still stores the file unexpired although it was closed here (a missed or misread close): cancel the
/// cleanup and re-open the file so the Picker keeps it, in one transaction.
pub fn reopen_alive(conn: &mut PgConnection, id: i64, cid: &str) -> Result<(), DbError> {
    conn.transaction(|conn| {
        cancel(conn, id, "cancelled: alive on chain at the head")?;
        diesel::update(
            files::table
                .find(cid)
                .filter(files::status.eq_any(vec![FileStatus::Closed, FileStatus::Cleaned])),
        )
        .set((
            files::status.eq(FileStatus::New),
            files::status_reason.eq("alive on chain (checked before delete)"),
            files::attempts.eq(0),
            files::pursued_since.eq(diesel::dsl::now),
            files::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
        Ok(())
    })
}

/// An attempt failed: retry later with backoff, or give up (`failed`) when attempts are exhausted.
pub fn finish_err(
    conn: &mut PgConnection,
    id: i64,
    error: &str,
    policy: &RetryPolicy,
) -> Result<CleanupStatus, DbError> {
    conn.transaction(|conn| {
        let attempts: i32 = cleanups::table
            .find(id)
            .select(cleanups::attempts)
            .for_update()
            .first(conn)?;
        let attempts = attempts + 1;
        let status = if attempts >= policy.max_attempts as i32 {
            CleanupStatus::Failed
        } else {
            CleanupStatus::Pending
        };
        diesel::update(
            cleanups::table
                .find(id)
                .filter(cleanups::status.eq(CleanupStatus::Pending)),
        )
        .set((
            cleanups::status.eq(status),
            cleanups::attempts.eq(attempts),
            cleanups::last_error.eq(error),
            cleanups::next_attempt_at.eq(Utc::now() + policy.delay(attempts)),
            cleanups::updated_at.eq(diesel::dsl::now),
        ))
        .execute(conn)?;
        Ok(status)
    })
}

/// Counts per cleanup status.
pub fn count_by_status(conn: &mut PgConnection) -> Result<Vec<(CleanupStatus, i64)>, DbError> {
    Ok(cleanups::table
        .group_by(cleanups::status)
        .select((cleanups::status, diesel::dsl::count_star()))
        .load(conn)?)
}

/// Recent cleanup requests, newest first.
pub fn recent(conn: &mut PgConnection, limit: i64) -> Result<Vec<Cleanup>, DbError> {
    Ok(cleanups::table
        .order(cleanups::id.desc())
        .limit(limit)
        .select(Cleanup::as_select())
        .load(conn)?)
}
