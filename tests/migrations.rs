//! Every migration has a working `down`: all up, all down, all up gives the same schema, and down leaves nothing.

mod common;

use diesel::prelude::*;
use diesel::sql_types::Text;

use common::TestDb;
use smanager::db;

#[derive(QueryableByName, Debug, PartialEq, Eq)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// A textual dump of everything the migrations create in `public`: tables, columns, indexes, constraints, types.
fn schema_dump(conn: &mut PgConnection) -> Vec<String> {
    let q = "
        SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || udt_name || ' null=' ||
               is_nullable || ' default=' || coalesce(column_default, '') || ' collation=' || coalesce(collation_name, '') AS line
          FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'
        UNION ALL
        SELECT 'index ' || indexdef FROM pg_indexes
         WHERE schemaname = 'public' AND tablename <> '__diesel_schema_migrations'
        UNION ALL
        SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
          FROM pg_constraint WHERE connamespace = 'public'::regnamespace
           AND conrelid::regclass::text <> '__diesel_schema_migrations'
        UNION ALL
        SELECT 'type ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
          FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
         WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname
        ORDER BY 1";
    diesel::sql_query(q)
        .load::<Line>(conn)
        .expect("dump schema")
        .into_iter()
        .map(|l| l.line)
        .collect()
}

#[test]
fn up_down_up_gives_the_same_schema() {
    let t = TestDb::empty();
    let mut conn = t.conn();
    let applied = db::run_migrations(&mut conn).expect("up");
    assert!(!applied.is_empty());
    let first = schema_dump(&mut conn);
    assert!(first.iter().any(|l| l.starts_with("column files.cid")), "{first:?}");
    assert!(first.iter().any(|l| l.contains("pins_one_live_per_cid")));

    let reverted = db::revert_all_migrations(&mut conn).expect("down");
    assert_eq!(reverted.len(), applied.len());
    let empty = schema_dump(&mut conn);
    assert!(empty.is_empty(), "down left objects behind: {empty:?}");

    db::run_migrations(&mut conn).expect("up again");
    assert_eq!(schema_dump(&mut conn), first);
}

#[test]
fn schema_rs_matches_the_migrations() {
    // Every table and column diesel knows must exist with that name: a drifted schema.rs fails here.
    let t = TestDb::migrated();
    let mut conn = t.conn();
    let dump = schema_dump(&mut conn);
    let schema_rs = include_str!("../src/db/schema.rs");
    let mut table = String::new();
    let mut checked = 0;
    for line in schema_rs.lines() {
        let l = line.trim();
        if let Some(name) = l.strip_suffix(") {").and_then(|s| s.split(' ').next()) {
            table = name.to_string();
        } else if l.starts_with('}') {
            table.clear();
        } else if let Some((col, _)) = l.split_once(" -> ").filter(|_| !table.is_empty()) {
            let needle = format!("column {table}.{col} ");
            assert!(
                dump.iter().any(|d| d.starts_with(&needle)),
                "schema.rs has {table}.{col}, the database does not"
            );
            checked += 1;
        }
    }
    let columns = dump.iter().filter(|d| d.starts_with("column ")).count();
    assert_eq!(
        checked, columns,
        "schema.rs and the migrations disagree on the number of columns"
    );
}

/// Upgrading a database that already holds files keeps their age: `pursued_since` starts at `created_at`, so files
/// waiting for weeks before the upgrade are not given a fresh month.
#[test]
fn pursued_since_is_backfilled_from_created_at() {
    use diesel_migrations::MigrationHarness;
    let t = TestDb::empty();
    let mut conn = t.conn();
    conn.run_next_migration(db::MIGRATIONS).expect("initial migration");
    diesel::sql_query(
        "INSERT INTO files (cid, status, created_at) VALUES ('QmOld', 'pin_error', now() - interval '20 days')",
    )
    .execute(&mut conn)
    .expect("insert");
    db::run_migrations(&mut conn).expect("the rest");
    #[derive(QueryableByName)]
    struct Same {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        same: bool,
    }
    let r: Same = diesel::sql_query("SELECT pursued_since = created_at AS same FROM files WHERE cid = 'QmOld'")
        .get_result(&mut conn)
        .expect("row");
    assert!(r.same);
}

#[test]
fn cid_columns_compare_bytewise_and_keep_their_rows() {
    use diesel::connection::SimpleConnection;
    use diesel_migrations::MigrationHarness;
    let t = TestDb::empty();
    let mut conn = t.conn();
    while conn
        .pending_migrations(db::MIGRATIONS)
        .expect("pending")
        .first()
        .is_some_and(|m| !m.name().to_string().contains("cid_collation"))
    {
        conn.run_next_migration(db::MIGRATIONS).expect("earlier migration");
    }
    conn.batch_execute(
        "INSERT INTO files (cid) VALUES ('QmKept');
         INSERT INTO file_owners (cid, owner, first_block, last_block) VALUES ('QmKept', 'cTowner', 1, 1);
         INSERT INTO pins (cid, lane, size_bytes) VALUES ('QmKept', 'small', 1);
         INSERT INTO cleanups (cid, reason) VALUES ('QmKept', 'closed')",
    )
    .expect("rows before the migration");
    db::run_migrations(&mut conn).expect("the collation migration");

    #[derive(QueryableByName)]
    struct Col {
        #[diesel(sql_type = Text)]
        col: String,
        #[diesel(sql_type = Text)]
        collation: String,
    }
    let cols: Vec<Col> = diesel::sql_query(
        "SELECT table_name || '.' || column_name AS col, coalesce(collation_name, '') AS collation
           FROM information_schema.columns
          WHERE table_schema = 'public' AND column_name IN ('cid', 'owner') ORDER BY 1",
    )
    .load(&mut conn)
    .expect("columns");
    let cols: Vec<(String, String)> = cols.into_iter().map(|c| (c.col, c.collation)).collect();
    let want: Vec<(String, String)> = [
        "cleanups.cid",
        "file_owners.cid",
        "file_owners.owner",
        "files.cid",
        "pins.cid",
    ]
    .iter()
    .map(|c| (c.to_string(), "C".to_string()))
    .collect();
    assert_eq!(cols, want);

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let n: N = diesel::sql_query(
        "SELECT (SELECT count(*) FROM files WHERE cid = 'QmKept') + (SELECT count(*) FROM file_owners WHERE cid = 'QmKept')
              + (SELECT count(*) FROM pins WHERE cid = 'QmKept') + (SELECT count(*) FROM cleanups WHERE cid = 'QmKept') AS n",
    )
    .get_result(&mut conn)
    .expect("count");
    assert_eq!(n.n, 4, "every row survives the migration");
    // The foreign keys still hold: an owner of an unknown file is refused, and deleting a file takes its rows along.
    assert!(diesel::sql_query(
        "INSERT INTO file_owners (cid, owner, first_block, last_block) VALUES ('QmUnknown', 'cTowner', 1, 1)"
    )
    .execute(&mut conn)
    .is_err());
    diesel::sql_query("DELETE FROM files WHERE cid = 'QmKept'")
        .execute(&mut conn)
        .expect("delete");
    let n: N = diesel::sql_query(
        "SELECT (SELECT count(*) FROM file_owners) + (SELECT count(*) FROM pins) + (SELECT count(*) FROM cleanups) AS n",
    )
    .get_result(&mut conn)
    .expect("count");
    assert_eq!(n.n, 0);
}
