//! PostgreSQL's raw write rate for rows we have indexed: `COPY` into unlogged copies of `files` and `file_owners`
//! (same columns, same indexes). `smanager bench` divides our indexing rate by it, so the report says how close we
//! are to what PostgreSQL on this machine allows, whatever the machine.

use std::io::Write as _;
use std::time::{Duration, Instant};

use diesel::prelude::*;

use super::schema::{file_owners, files};
use super::DbError;

diesel::table! {
    floor_files (cid) {
        cid -> Text,
        size_bytes -> Int8,
        tips -> Numeric,
        amount -> Numeric,
        expired_at -> Int8,
        replicas -> Int4,
        first_seen_block -> Nullable<Int8>,
    }
}

diesel::table! {
    floor_file_owners (cid, owner) {
        cid -> Text,
        owner -> Text,
        orders -> Int4,
        first_block -> Int8,
        last_block -> Int8,
    }
}

/// Rows copied and the time the `COPY` statements took (reading the rows is not counted).
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyFloor {
    /// `files` rows copied.
    pub file_rows: u64,
    /// `file_owners` rows copied (0 when owners were not asked for).
    pub owner_rows: u64,
    /// Time spent in `COPY` statements only.
    pub elapsed: Duration,
    /// CPU time the server process spent in those statements (`None` when the server's processes are not visible on
    /// this machine): with the chain's and the client's, it says what the machine's cores allow at best.
    pub server_cpu: Option<Duration>,
}

/// Rows read per `COPY`: bounds the memory the measurement needs.
const CHUNK: i64 = 20_000;

/// Copies every `files` row (and every `file_owners` row when `owners`) into fresh unlogged copies, in chunks, and
/// times the copies. `process_cpu` gives a local process's CPU time so far, by pid: it is read around each `COPY`
/// for the connection's server process. The copies are dropped afterwards.
pub fn copy_floor(
    conn: &mut PgConnection,
    owners: bool,
    process_cpu: &dyn Fn(u32) -> Option<Duration>,
) -> Result<CopyFloor, DbError> {
    let backend: i32 =
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("pg_backend_pid()")).get_result(conn)?;
    let backend = u32::try_from(backend).ok();
    let cpu = || backend.and_then(process_cpu);
    diesel::sql_query("DROP TABLE IF EXISTS floor_files, floor_file_owners").execute(conn)?;
    diesel::sql_query("CREATE UNLOGGED TABLE floor_files (LIKE files INCLUDING ALL)").execute(conn)?;
    diesel::sql_query("CREATE UNLOGGED TABLE floor_file_owners (LIKE file_owners INCLUDING ALL)").execute(conn)?;
    let mut out = CopyFloor {
        server_cpu: cpu().map(|_| Duration::ZERO),
        ..CopyFloor::default()
    };
    // Adds the server CPU of one `COPY` (read before and after it); unknown as soon as one reading is missing.
    let account = |out: &mut CopyFloor, before: Option<Duration>| {
        out.server_cpu = match (out.server_cpu, before, cpu()) {
            (Some(total), Some(b), Some(a)) => Some(total + a.saturating_sub(b)),
            _ => None,
        };
    };
    let mut after = String::new();
    loop {
        type Row = (
            String,
            i64,
            bigdecimal::BigDecimal,
            bigdecimal::BigDecimal,
            i64,
            i32,
            Option<i64>,
        );
        let rows: Vec<Row> = files::table
            .filter(files::cid.gt(&after))
            .order(files::cid.asc())
            .limit(CHUNK)
            .select((
                files::cid,
                files::size_bytes,
                files::tips,
                files::amount,
                files::expired_at,
                files::replicas,
                files::first_seen_block,
            ))
            .load(conn)?;
        let Some(last) = rows.last() else { break };
        after = last.0.clone();
        let mut text = Vec::with_capacity(rows.len() * 96);
        for (cid, size, tips, amount, expired, replicas, first) in &rows {
            let first = first.map_or_else(|| "\\N".to_string(), |b| b.to_string());
            writeln!(text, "{cid}\t{size}\t{tips}\t{amount}\t{expired}\t{replicas}\t{first}")
                .map_err(|e| DbError::Invalid(e.to_string()))?;
        }
        let (started, cpu_before) = (Instant::now(), cpu());
        let n = diesel::copy_from(floor_files::table)
            .from_raw_data(floor_files::table, |w| {
                w.write_all(&text)
                    .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
            })
            .execute(conn)?;
        out.elapsed += started.elapsed();
        account(&mut out, cpu_before);
        out.file_rows += n as u64;
    }
    if owners {
        let mut after = (String::new(), String::new());
        loop {
            let rows: Vec<(String, String, i32, i64, i64)> = file_owners::table
                .filter(
                    file_owners::cid
                        .gt(&after.0)
                        .or(file_owners::cid.eq(&after.0).and(file_owners::owner.gt(&after.1))),
                )
                .order((file_owners::cid.asc(), file_owners::owner.asc()))
                .limit(CHUNK)
                .load(conn)?;
            let Some(last) = rows.last() else { break };
            after = (last.0.clone(), last.1.clone());
            let mut text = Vec::with_capacity(rows.len() * 128);
            for (cid, owner, orders, first, last) in &rows {
                writeln!(text, "{cid}\t{owner}\t{orders}\t{first}\t{last}")
                    .map_err(|e| DbError::Invalid(e.to_string()))?;
            }
            let (started, cpu_before) = (Instant::now(), cpu());
            let n = diesel::copy_from(floor_file_owners::table)
                .from_raw_data(floor_file_owners::table, |w| {
                    w.write_all(&text)
                        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))
                })
                .execute(conn)?;
            out.elapsed += started.elapsed();
            account(&mut out, cpu_before);
            out.owner_rows += n as u64;
        }
    }
    diesel::sql_query("DROP TABLE floor_files, floor_file_owners").execute(conn)?;
    Ok(out)
}
