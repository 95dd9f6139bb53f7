//! `smanager bench` at a small size: it runs every phase (scan, its limits, steady state, catch-up, its limits, pick
//! latency) against real processes and PostgreSQL and reports consistent counts and ratios. Speed is judged from the full-size report, never here.

mod common;

use std::process::Command;

use diesel::prelude::*;

use common::TestDb;
use smanager::db::floor::{copy_floor, FloorOrder, FloorTables};

#[test]
fn bench_reports_scan_catchup_and_pick_latency() {
    let out = Command::new(env!("CARGO_BIN_EXE_smanager"))
        .args(["bench", "--files", "3000", "--blocks", "100", "--orders-per-block", "5"])
        .args(["--settle-secs", "2", "--steady-secs", "3"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SMANAGER_CONFIG")
        .output()
        .expect("run smanager bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line:\n{stdout}\n{stderr}"));
    let r: serde_json::Value = serde_json::from_str(line).expect("bench JSON");
    let n = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {line}"));
    // Every FilesV2 entry of the genesis pre-fill is scanned (plus the CIDs the catch-up blocks ordered).
    assert!(n("scanned_files") >= 3000.0, "{line}");
    assert_eq!(n("catchup_blocks"), 100.0, "{line}");
    // Every order of the history, repeats, batches and multisig orders included (at least 5 per block).
    assert_eq!(n("catchup_orders"), n("catchup_orders_on_chain"), "{line}");
    assert!(n("catchup_orders") >= 500.0, "{line}");
    for k in [
        "orders_per_sec",
        "catchup_blocks_per_sec",
        "peak_rss_bytes",
        "pick_latency_ms_p50",
        "scan_chain_limit_per_sec",
        "scan_pg_limit_per_sec",
        "scan_pg_key_order_per_sec",
        "scan_limit_ratio",
        "catchup_chain_limit_blocks_per_sec",
        "catchup_pg_limit_blocks_per_sec",
        "catchup_pg_key_order_blocks_per_sec",
        "catchup_limit_ratio",
        "steady_rss_bytes",
        "api_files_p95_ms",
        "api_stats_p95_ms",
    ] {
        assert!(n(k) > 0.0, "{k} not positive: {line}");
    }
    // The ratios are ours over the slower limit, as reported.
    let ratio =
        n("catchup_blocks_per_sec") / n("catchup_chain_limit_blocks_per_sec").min(n("catchup_pg_limit_blocks_per_sec"));
    assert!((ratio - n("catchup_limit_ratio")).abs() < 0.02 + ratio * 0.02, "{line}");
    let ratio = n("orders_per_sec") / n("scan_chain_limit_per_sec").min(n("scan_pg_limit_per_sec"));
    assert!((ratio - n("scan_limit_ratio")).abs() < 0.02 + ratio * 0.02, "{line}");
    // CPU by party, for both phases and their floors; PostgreSQL runs on this machine, so its share is known.
    for k in [
        "catchup_cpu_ms_per_block",
        "catchup_floor_cpu_ms_per_block",
        "catchup_durable_floor_cpu_ms_per_block",
        "scan_cpu_ms_per_1k_files",
        "scan_floor_cpu_ms_per_1k_files",
    ] {
        let ours = if k.contains("floor") { "client" } else { "smanager" };
        for party in [ours, "chain", "postgres"] {
            assert!(r[k][party].as_f64().is_some_and(|x| x >= 0.0), "{k}.{party}: {line}");
        }
    }
    // The pipeline did work: its CPU is visible even at this size.
    assert!(
        r["catchup_cpu_ms_per_block"]["smanager"]
            .as_f64()
            .is_some_and(|x| x > 0.0),
        "{line}"
    );
    // Where the floors are large enough to read, a ceiling is the cores shared by their sum; it is missing only when
    // they are not.
    let cores = r["machine"]["cores"].as_f64().expect("cores");
    let ceiling_of = |floor_key: &str, ceiling_key: &str| -> Option<f64> {
        let sum: f64 = ["client", "chain", "postgres"]
            .iter()
            .filter_map(|p| r[floor_key][*p].as_f64())
            .sum();
        let ceiling = r[ceiling_key].as_f64();
        match ceiling {
            Some(ceiling) => {
                let expected = cores * 1000.0 / sum;
                assert!(
                    (ceiling - expected).abs() <= 1.0 + expected * 0.01,
                    "{ceiling_key}: {line}"
                );
            }
            None => assert_eq!(
                sum, 0.0,
                "{ceiling_key} missing although its floors were measured: {line}"
            ),
        }
        ceiling
    };
    if let Some(ceiling) = ceiling_of("catchup_floor_cpu_ms_per_block", "catchup_cpu_ceiling_blocks_per_sec") {
        let ratio = n("catchup_blocks_per_sec") / ceiling;
        assert!(
            (ratio - n("catchup_cpu_ceiling_ratio")).abs() < 0.02 + ratio * 0.02,
            "{line}"
        );
    }
    // The durable floor: the same client and chain shares, PostgreSQL's own; its ceiling over the same limit.
    let (floor, durable) = (
        &r["catchup_floor_cpu_ms_per_block"],
        &r["catchup_durable_floor_cpu_ms_per_block"],
    );
    for party in ["client", "chain"] {
        assert_eq!(durable[party], floor[party], "{party}: {line}");
    }
    assert!(n("catchup_pg_durable_floor_blocks_per_sec") > 0.0, "{line}");
    if let Some(ceiling) = ceiling_of(
        "catchup_durable_floor_cpu_ms_per_block",
        "catchup_durable_cpu_ceiling_blocks_per_sec",
    ) {
        let ratio = ceiling / n("catchup_chain_limit_blocks_per_sec").min(n("catchup_pg_limit_blocks_per_sec"));
        assert!(
            (ratio - n("catchup_durable_ceiling_limit_ratio")).abs() < 0.02 + ratio * 0.02,
            "{line}"
        );
    }
    // Every catch-up block was written by some transaction, none by more than one: between 1 and APPLY_BLOCKS per
    // write.
    let per_write = n("catchup_blocks_per_write");
    let most = smanager::actors::indexer::APPLY_BLOCKS as f64;
    assert!((1.0..=most).contains(&per_write), "{line}");
    // The writer's time is part of the catch-up's, so the rate it alone allows is at least the rate measured.
    assert!(n("catchup_write_secs") > 0.0, "{line}");
    assert!(n("catchup_write_secs") <= n("catchup_secs") + 0.1, "{line}");
    // `catchup_write_secs` is printed to the millisecond, the bound computed before rounding: on a short write the
    // half millisecond moves it by more than 2 %, so the bound is checked against what the printed time allows.
    let (blocks, write_secs) = (n("catchup_blocks"), n("catchup_write_secs"));
    let (low, high) = (
        blocks / (write_secs + 0.0005),
        blocks / (write_secs - 0.0005).max(0.0001),
    );
    let bound = n("catchup_write_bound_blocks_per_sec");
    assert!(bound >= low * 0.98 - 1.0 && bound <= high * 1.02 + 1.0, "{line}");
    assert!(
        n("catchup_write_bound_blocks_per_sec") >= n("catchup_blocks_per_sec") * 0.98,
        "{line}"
    );
    assert!(n("catchup_write_pg_floor_ratio") > 0.0, "{line}");
    // The writes alone, over the same limit as the catch-up's ratio.
    let ratio = n("catchup_writer_alone_blocks_per_sec")
        / n("catchup_chain_limit_blocks_per_sec").min(n("catchup_pg_limit_blocks_per_sec"));
    assert!(ratio > 0.0, "{line}");
    assert!(
        (ratio - n("catchup_writer_alone_limit_ratio")).abs() < 0.02 + ratio * 0.02,
        "{line}"
    );
    // Steady state ran over every scanned file.
    assert_eq!(n("steady_files"), n("scanned_files"), "{line}");
    assert!(r["steady_cpu_ms_per_idle_min"].as_u64().is_some(), "{line}");
    assert!(n("pick_latency_ms_p50") <= n("pick_latency_ms_max"), "{line}");
}

#[test]
fn catchup_only_measures_the_catch_up_and_leaves_the_rest_null() {
    let out = Command::new(env!("CARGO_BIN_EXE_smanager"))
        .args([
            "bench",
            "--files",
            "100",
            "--blocks",
            "50",
            "--orders-per-block",
            "4",
            "--catchup-only",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SMANAGER_CONFIG")
        // Logging asked for: it goes to stderr, and stdout stays the report alone.
        .env("RUST_LOG", "info")
        .output()
        .expect("run smanager bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "stdout is the one JSON line:\n{stdout}");
    let line = lines[0];
    assert!(
        stderr.contains("\"level\":\"INFO\""),
        "the log went to stderr:\n{stderr}"
    );
    let r: serde_json::Value = serde_json::from_str(line).expect("bench JSON");
    assert_eq!(r["catchup_orders"], r["catchup_orders_on_chain"], "{line}");
    assert!(r["catchup_orders"].as_u64().is_some_and(|n| n >= 200), "{line}");
    assert!(r["catchup_limit_ratio"].as_f64().is_some_and(|x| x > 0.0), "{line}");
    for k in [
        "orders_per_sec",
        "scan_limit_ratio",
        "steady_rss_bytes",
        "pick_latency_ms_p50",
    ] {
        assert!(
            r[k].is_null(),
            "{k} measured although only the catch-up was asked for: {line}"
        );
    }
}

/// PostgreSQL's limit copies every row, NULLs and large amounts included, whether it follows the table's pages
/// (the order the rows were written) or their keys, whatever its chunk, and into either kind of copy: a lost row
/// would flatter the limit.
#[test]
fn the_copy_floor_copies_every_row_in_either_order() {
    let t = TestDb::migrated();
    let mut c = t.conn();
    diesel::sql_query(
        "INSERT INTO files (cid, size_bytes, tips, amount, expired_at, replicas, first_seen_block)
         SELECT 'bafy' || md5(i::text), i, i * 1000000000000, 340282366920938463463374607431768211455, i, i % 9,
                CASE WHEN i % 3 = 0 THEN NULL ELSE i END
           FROM generate_series(1, 2500) AS i",
    )
    .execute(&mut c)
    .expect("files");
    let owners = diesel::sql_query(
        "INSERT INTO file_owners (cid, owner, orders, first_block, last_block)
         SELECT cid, 'cT' || size_bytes % 4, 1, 1, 2 FROM files WHERE size_bytes % 7 = 0",
    )
    .execute(&mut c)
    .expect("owners");
    assert!(owners > 300);
    for tables in [FloorTables::Unlogged, FloorTables::Durable] {
        for order in [FloorOrder::Arrival, FloorOrder::KeyOrder] {
            for chunk in [7, 1000, 100_000] {
                let floor = copy_floor(&mut c, true, order, tables, chunk, &|_| None).expect("floor");
                let what = format!("{tables:?} {order:?} in chunks of {chunk}");
                assert_eq!(floor.file_rows, 2500, "{what}");
                assert_eq!(floor.owner_rows, owners as u64, "{what}");
                assert!(floor.server_cpu.is_none(), "no CPU reading, no CPU figure");
            }
        }
    }
    // The durable copies leave the connection committing as it did.
    let sync: String = diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
        "current_setting('synchronous_commit')",
    ))
    .get_result(&mut c)
    .expect("setting");
    assert_eq!(sync, "on");
}

/// The unlogged copies are the raw limit (unlogged, no foreign key); the durable ones what durability costs at least
/// (logged, with the owners' key): swapping them would make either figure say something else.
#[test]
fn the_floor_copies_are_made_of_what_they_measure() {
    use smanager::db::floor::create_copies;
    #[derive(QueryableByName)]
    struct Made {
        #[diesel(sql_type = diesel::sql_types::Text)]
        files: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        owners: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        keys: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        indexes: i64,
    }
    let t = TestDb::migrated();
    let mut c = t.conn();
    let made = |c: &mut PgConnection| -> Made {
        diesel::sql_query(
            "SELECT (SELECT relpersistence::text FROM pg_class WHERE relname = 'floor_files') AS files,
                    (SELECT relpersistence::text FROM pg_class WHERE relname = 'floor_file_owners') AS owners,
                    (SELECT count(*) FROM pg_constraint
                      WHERE conrelid = 'floor_file_owners'::regclass AND contype = 'f'
                        AND confrelid = 'floor_files'::regclass) AS keys,
                    (SELECT count(*) FROM pg_index WHERE indrelid = 'floor_files'::regclass) AS indexes",
        )
        .get_result(c)
        .expect("catalog")
    };
    let files_indexes: i64 = diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "(SELECT count(*) FROM pg_index WHERE indrelid = 'files'::regclass)",
    ))
    .get_result(&mut c)
    .expect("indexes");
    create_copies(&mut c, FloorTables::Unlogged).expect("unlogged");
    let m = made(&mut c);
    assert_eq!((m.files.as_str(), m.owners.as_str(), m.keys), ("u", "u", 0));
    assert_eq!(m.indexes, files_indexes, "the same indexes as files");
    create_copies(&mut c, FloorTables::Durable).expect("durable");
    let m = made(&mut c);
    assert_eq!((m.files.as_str(), m.owners.as_str(), m.keys), ("p", "p", 1));
    assert_eq!(m.indexes, files_indexes, "the same indexes as files");
}
