//! PostgreSQL's raw write rate for rows we have indexed: `COPY` into unlogged copies of `files` and `file_owners`
//! (same columns, same indexes). `smanager bench` divides our indexing rate by it, so the report says how close we
//! are to what PostgreSQL on this machine allows, whatever the machine. The same copy into logged tables with the
//! owners' foreign key says what keeping the rows durable costs at least, whoever writes them.

use std::time::{Duration, Instant};

use diesel::prelude::*;

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

/// Heap pages read per query while following the order rows were written in.
const PAGES_PER_READ: i64 = 256;

/// In which order the rows reach `COPY`. B-tree inserts in key order are several times cheaper than in any other
/// order (each insert lands on the page the last one did), so the order decides the limit as much as the rows do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorOrder {
    /// The order the indexer wrote them in (the physical order of the freshly written table: the chain's order),
    /// each chunk (as many rows as the scanner's writes hold, `chain.scanWriteRows`) sorted by key: the best a
    /// writer can do that holds at most a chunk of the chain's rows at a time, as ours must (memory flat in the
    /// number of files). This is the limit.
    Arrival,
    /// The whole table in key order, which only a writer holding every row before writing could feed. Reported
    /// next to the limit, for comparison with earlier reports.
    KeyOrder,
}

/// What the copies are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloorTables {
    /// Unlogged, without the foreign key: PostgreSQL's raw write rate, the limit the bench's ratios divide by.
    Unlogged,
    /// Logged, with the owners' foreign key, committing without waiting for the WAL flush as the indexer does: the
    /// least any writer pays for holding these rows durably and consistently, so the bench can say how far durable
    /// writing alone keeps us from the limit.
    Durable,
}

/// One table's rows as `COPY` text lines, each with its sort key.
struct Source {
    /// The table read.
    table: &'static str,
    /// The `SELECT` list: a key and the line.
    select: &'static str,
    /// Keyset pagination in key order: `$1`, `$2` are the last key's parts (`files` has one; its `$2` is only
    /// typed, since every bound parameter must be).
    after_key: &'static str,
}

const FILES: Source = Source {
    table: "files",
    select: "SELECT cid AS k1, '' AS k2, concat_ws(E'\\t', cid, size_bytes, tips, amount, expired_at, replicas, \
             COALESCE(first_seen_block::text, '\\N')) AS line FROM files",
    after_key: "WHERE cid > $1 AND $2::text IS NOT NULL ORDER BY cid",
};

const OWNERS: Source = Source {
    table: "file_owners",
    select: "SELECT cid AS k1, owner AS k2, concat_ws(E'\\t', cid, owner, orders, first_block, last_block) AS line \
             FROM file_owners",
    after_key: "WHERE (cid, owner) > ($1, $2) ORDER BY cid, owner",
};

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = diesel::sql_types::Text)]
    k1: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    k2: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    line: String,
}

/// Every row of `src` in `order`, spooled to an anonymous temporary file as chunks of at most `chunk` lines, each
/// sorted by key: the copies then read their chunks from the file. Reading the source between copies would evict the
/// copy's own index pages from shared buffers (the source is as large as the copy), and charge the floor for it.
struct Spool {
    file: std::fs::File,
    /// Bytes of each chunk, in order.
    chunks: Vec<usize>,
}

impl Spool {
    fn write(conn: &mut PgConnection, src: &Source, order: FloorOrder, chunk: usize) -> Result<Spool, DbError> {
        let io = |e: std::io::Error| DbError::Invalid(format!("floor spool: {e}"));
        let mut out = std::io::BufWriter::new(tempfile::tempfile().map_err(io)?);
        let mut chunks = Vec::new();
        let mut put = |rows: &mut Vec<Line>| -> Result<(), DbError> {
            use std::io::Write as _;
            rows.sort_unstable_by(|a, b| (&a.k1, &a.k2).cmp(&(&b.k1, &b.k2)));
            let mut bytes = 0;
            for r in rows.iter() {
                out.write_all(r.line.as_bytes()).map_err(io)?;
                out.write_all(b"\n").map_err(io)?;
                bytes += r.line.len() + 1;
            }
            chunks.push(bytes);
            Ok(())
        };
        read_chunks(conn, src, order, chunk, &mut put)?;
        let mut file = out.into_inner().map_err(|e| io(e.into_error()))?;
        std::io::Seek::rewind(&mut file).map_err(io)?;
        Ok(Spool { file, chunks })
    }

    /// Calls `copy` with each chunk's text, in order.
    fn each(mut self, mut copy: impl FnMut(&[u8]) -> Result<(), DbError>) -> Result<(), DbError> {
        use std::io::Read as _;
        let mut text = Vec::new();
        for n in std::mem::take(&mut self.chunks) {
            text.resize(n, 0);
            self.file
                .read_exact(&mut text)
                .map_err(|e| DbError::Invalid(format!("floor spool: {e}")))?;
            copy(&text)?;
        }
        Ok(())
    }
}

/// Reads every row of `src` as chunks of at most `chunk` lines, in `order`, and hands each chunk to `put`.
fn read_chunks(
    conn: &mut PgConnection,
    src: &Source,
    order: FloorOrder,
    chunk: usize,
    put: &mut dyn FnMut(&mut Vec<Line>) -> Result<(), DbError>,
) -> Result<(), DbError> {
    use diesel::sql_types::{BigInt, Text};
    let chunk = chunk.max(1);
    match order {
        FloorOrder::KeyOrder => {
            let mut after = (String::new(), String::new());
            loop {
                let mut rows: Vec<Line> = diesel::sql_query(format!("{} {} LIMIT {chunk}", src.select, src.after_key))
                    .bind::<Text, _>(&after.0)
                    .bind::<Text, _>(&after.1)
                    .load(conn)?;
                let Some(last) = rows.last() else { break };
                after = (last.k1.clone(), last.k2.clone());
                put(&mut rows)?;
            }
        }
        FloorOrder::Arrival => {
            #[derive(QueryableByName)]
            struct Pages {
                #[diesel(sql_type = BigInt)]
                n: i64,
            }
            let pages = diesel::sql_query(format!(
                "SELECT (pg_relation_size('{}') / current_setting('block_size')::int)::int8 AS n",
                src.table
            ))
            .get_result::<Pages>(conn)?
            .n;
            let mut held: Vec<Line> = Vec::new();
            let mut page = 0;
            while page < pages {
                let read: Vec<Line> = diesel::sql_query(format!(
                    "{} WHERE ctid >= format('(%s,0)', $1::int8)::tid AND ctid < format('(%s,0)', $2::int8)::tid",
                    src.select
                ))
                .bind::<BigInt, _>(page)
                .bind::<BigInt, _>(page + PAGES_PER_READ)
                .load(conn)?;
                held.extend(read);
                page += PAGES_PER_READ;
                while held.len() >= chunk || (page >= pages && !held.is_empty()) {
                    let mut next: Vec<Line> = held.drain(..held.len().min(chunk)).collect();
                    put(&mut next)?;
                }
            }
        }
    }
    Ok(())
}

/// Creates empty `floor_files` and `floor_file_owners` made of `tables` (dropping any left over): public so a test
/// can check what they are made of.
pub fn create_copies(conn: &mut PgConnection, tables: FloorTables) -> Result<(), DbError> {
    diesel::sql_query("DROP TABLE IF EXISTS floor_files, floor_file_owners").execute(conn)?;
    match tables {
        FloorTables::Unlogged => {
            diesel::sql_query("CREATE UNLOGGED TABLE floor_files (LIKE files INCLUDING ALL)").execute(conn)?;
            diesel::sql_query("CREATE UNLOGGED TABLE floor_file_owners (LIKE file_owners INCLUDING ALL)")
                .execute(conn)?;
        }
        FloorTables::Durable => {
            diesel::sql_query("CREATE TABLE floor_files (LIKE files INCLUDING ALL)").execute(conn)?;
            diesel::sql_query(
                "CREATE TABLE floor_file_owners (LIKE file_owners INCLUDING ALL,
                     FOREIGN KEY (cid) REFERENCES floor_files (cid) ON DELETE CASCADE)",
            )
            .execute(conn)?;
        }
    }
    Ok(())
}

/// Copies every `files` row (and every `file_owners` row when `owners`) into fresh copies made of `tables`, in
/// chunks of `chunk` rows fed in `order` (spooled to a temporary file first, see [`Spool`]), each chunk its own
/// transaction, and times the copies. `process_cpu` gives the server's CPU time so far, given the connection's server
/// process id: it is read around each `COPY`. The copies are dropped afterwards.
pub fn copy_floor(
    conn: &mut PgConnection,
    owners: bool,
    order: FloorOrder,
    tables: FloorTables,
    chunk: usize,
    process_cpu: &dyn Fn(u32) -> Option<Duration>,
) -> Result<CopyFloor, DbError> {
    let backend: i32 =
        diesel::select(diesel::dsl::sql::<diesel::sql_types::Integer>("pg_backend_pid()")).get_result(conn)?;
    let backend = u32::try_from(backend).ok();
    let cpu = || backend.and_then(process_cpu);
    create_copies(conn, tables)?;
    if tables == FloorTables::Durable {
        // Committing as the indexer does. Reset below; a failed floor fails the bench with its connection.
        diesel::sql_query("SET synchronous_commit = off").execute(conn)?;
    }
    let mut out = CopyFloor {
        server_cpu: cpu().map(|_| Duration::ZERO),
        ..CopyFloor::default()
    };
    // Copies one chunk of lines, adding its time and the server CPU it took (read before and after it; unknown as
    // soon as one reading is missing). Returns the rows copied.
    let mut timed = |conn: &mut PgConnection, text: &[u8], owners: bool| -> Result<u64, DbError> {
        // The reading first: it may scan every process, and is not the copy's time.
        let before = cpu();
        let started = Instant::now();
        let n = if owners {
            diesel::copy_from(floor_file_owners::table)
                .from_raw_data(floor_file_owners::table, super::copy_body(text))
                .execute(conn)?
        } else {
            diesel::copy_from(floor_files::table)
                .from_raw_data(floor_files::table, super::copy_body(text))
                .execute(conn)?
        };
        out.elapsed += started.elapsed();
        out.server_cpu = match (out.server_cpu, before, cpu()) {
            (Some(total), Some(b), Some(a)) => Some(total + a.saturating_sub(b)),
            _ => None,
        };
        Ok(n as u64)
    };
    let files_spool = Spool::write(conn, &FILES, order, chunk)?;
    let owners_spool = owners.then(|| Spool::write(conn, &OWNERS, order, chunk)).transpose()?;
    let mut file_rows = 0;
    files_spool.each(|text| {
        file_rows += timed(conn, text, false)?;
        Ok(())
    })?;
    let mut owner_rows = 0;
    if let Some(spool) = owners_spool {
        spool.each(|text| {
            owner_rows += timed(conn, text, true)?;
            Ok(())
        })?;
    }
    if tables == FloorTables::Durable {
        diesel::sql_query("RESET synchronous_commit").execute(conn)?;
    }
    diesel::sql_query("DROP TABLE floor_files, floor_file_owners").execute(conn)?;
    Ok(CopyFloor {
        file_rows,
        owner_rows,
        ..out
    })
}
