//! `smanager explain` and `smanager plan` on a node's state: a real PostgreSQL holding indexed files, group and head
//! as the indexer writes them, and the devnet sWorker over a real socket for capacity. Explain names the deciding
//! rule with its numbers; a plan lists what the next round takes and changes when the strategy does.

mod common;

use std::time::Duration;

use diesel::prelude::*;
use serde_json::Value;

use common::TestDb;
use smanager::db::state::{self, ChainHead, GroupInfo};
use smanager::decision::cid_mod;
use smanager::devnet::sworker::{SworkerConfig, SworkerSim};

fn cids(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mh = cid::multihash::Multihash::<64>::wrap(0x12, &sp_crypto_hashing::sha2_256(&i.to_le_bytes()))
                .expect("multihash");
            cid::Cid::new_v0(mh).expect("v0").to_string()
        })
        .collect()
}

/// A `new` file as the indexer (order event) or the scanner (FilesV2) leaves it.
fn insert(conn: &mut PgConnection, cid: &str, size: i64, scanned: bool, expired_at: i64, replicas: i32, value: i64) {
    diesel::sql_query(
        "INSERT INTO files (cid, size_bytes, tips, amount, expired_at, replicas, seen_by_event, seen_by_scan, \
         first_seen_block, status) VALUES ($1, $2, $3, $3, $4, $5, $6, $7, $8, 'new')",
    )
    .bind::<diesel::sql_types::Text, _>(cid)
    .bind::<diesel::sql_types::BigInt, _>(size)
    .bind::<diesel::sql_types::Numeric, _>(bigdecimal::BigDecimal::from(value))
    .bind::<diesel::sql_types::BigInt, _>(expired_at)
    .bind::<diesel::sql_types::Integer, _>(replicas)
    .bind::<diesel::sql_types::Bool, _>(!scanned)
    .bind::<diesel::sql_types::Bool, _>(scanned)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>, _>((!scanned).then_some(900i64))
    .execute(conn)
    .expect("insert file");
}

struct Fixture {
    db: TestDb,
    sworker: SworkerSim,
    ours_small: String,
    other_slot: String,
    too_big: String,
    short_lived: String,
    new_orders: Vec<String>,
    scanned: Vec<String>,
}

const HEAD: i64 = 1000;
const DAY: i64 = 14_400;

fn fixture() -> Fixture {
    let db = TestDb::migrated();
    // 2 GiB free: a 1 GiB file needs 2.2 GiB.
    let sworker = SworkerSim::start(
        common_addr(),
        SworkerConfig {
            capacity_bytes: 2 << 30,
            srd_gib: 0,
            ..Default::default()
        },
    )
    .expect("sworker");
    let mut conn = db.conn();
    let group = GroupInfo {
        owner: Some("cTGroupOwner".into()),
        members: vec!["m0".into(), "m1".into(), "m2".into()],
        node_index: Some(0),
        refreshed_at: None,
    };
    state::kv_set(&mut conn, state::KV_GROUP, &group).expect("group");
    state::kv_set(
        &mut conn,
        state::KV_CHAIN_HEAD,
        &ChainHead {
            number: HEAD,
            hash: "0x00".into(),
            timestamp_ms: None,
        },
    )
    .expect("head");
    state::kv_set(&mut conn, state::KV_NODE_COUNT, &3u64).expect("nodes");
    let all = cids(200);
    let mut ours = all.iter().filter(|c| cid_mod(c, 3) == Some(0)).cloned();
    let other_slot = all
        .iter()
        .find(|c| cid_mod(c, 3) != Some(0))
        .cloned()
        .expect("a CID of another slot");
    let mut next = || ours.next().expect("enough CIDs of our slot");
    let ours_small = next();
    let too_big = next();
    let short_lived = next();
    let new_orders: Vec<String> = (0..5).map(|_| next()).collect();
    let scanned: Vec<String> = (0..5).map(|_| next()).collect();
    insert(&mut conn, &ours_small, 1 << 20, false, 0, 0, 100);
    insert(&mut conn, &other_slot, 1 << 20, false, 0, 0, 100);
    insert(&mut conn, &too_big, 1 << 30, false, 0, 0, 100);
    insert(&mut conn, &short_lived, 1 << 20, true, HEAD + 10 * DAY, 50, 100);
    for (i, c) in new_orders.iter().enumerate() {
        insert(&mut conn, c, 1 << 20, false, 0, 0, 10 + i as i64);
    }
    for (i, c) in scanned.iter().enumerate() {
        insert(&mut conn, c, 1 << 20, true, HEAD + 200 * DAY, 50, 10 + i as i64);
    }
    Fixture {
        db,
        sworker,
        ours_small,
        other_slot,
        too_big,
        short_lived,
        new_orders,
        scanned,
    }
}

fn common_addr() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Runs the real binary against the fixture's database and sWorker (async, so the sWorker keeps serving).
async fn smanager(f: &Fixture, args: &[&str]) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_smanager"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SMANAGER") {
            cmd.env_remove(k);
        }
    }
    cmd.env("SMANAGER__DATABASE__URL", &f.db.url)
        .env("SMANAGER__SWORKER__END_POINT", f.sworker.url())
        .env("SMANAGER__SCHEDULER__MIN_SRD_RATIO", "0")
        .env("SMANAGER__SCHEDULER__MIN_SYS_FREE_GIB", "0")
        .env("SMANAGER__SCHEDULER__MAX_PENDING_TASKS", "4")
        .env(
            "SMANAGER__CHAIN__ACCOUNT",
            "cTM8suyN19VZb7JEPRNvtezyfpEAJyYxHkk1n5J4XEr6XroRa",
        );
    let out = actix_rt::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("smanager finished in time")
        .expect("run smanager");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn explain(f: &Fixture, cid: &str) -> Value {
    let (code, out, err) = smanager(f, &["explain", cid, "--json"]).await;
    assert_eq!(code, 0, "{out}{err}");
    serde_json::from_str(&out).expect("explain JSON")
}

fn failing_rule(e: &Value) -> (String, String) {
    let c = e["decision"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["outcome"] == "fail")
        .expect("a failing rule");
    (
        c["rule"].as_str().unwrap_or_default().to_string(),
        c["detail"].as_str().unwrap_or_default().to_string(),
    )
}

#[actix_rt::test]
async fn explain_names_the_deciding_rule_with_its_numbers() {
    let f = fixture();

    let e = explain(&f, &f.ours_small).await;
    assert_eq!(e["decision"]["verdict"], "pick", "{e:#}");
    assert_eq!(e["source"], "new_order");
    assert!(e["unavailable"].as_array().is_some_and(|u| u.is_empty()), "{e:#}");
    assert!(e["next"].as_str().is_some_and(|n| n.contains("picked")), "{e:#}");

    let e = explain(&f, &f.other_slot).await;
    assert_eq!(e["decision"]["verdict"], "skip");
    let (rule, detail) = failing_rule(&e);
    let slot = cid_mod(&f.other_slot, 3).expect("slot");
    assert_eq!(rule, "group_slot");
    assert_eq!(detail, format!("slot {slot} of 3 members; ours is 0"));

    let e = explain(&f, &f.too_big).await;
    assert_eq!(e["decision"]["verdict"], "no_space", "{e:#}");
    let (rule, detail) = failing_rule(&e);
    assert_eq!(rule, "space");
    assert!(
        detail.contains("2.2 GiB") && detail.contains("2.0 GiB free"),
        "{detail}"
    );

    let e = explain(&f, &f.short_lived).await;
    assert_eq!(e["source"], "scanned");
    assert_eq!(e["decision"]["verdict"], "skip");
    let (rule, detail) = failing_rule(&e);
    assert_eq!(rule, "lifetime");
    assert!(
        detail.contains("10 days") && detail.contains("minLifetimeDays 120"),
        "{detail}"
    );

    // Text for a terminal carries the same rules; an unknown CID is an error, not an empty answer.
    let (code, out, err) = smanager(&f, &["explain", &f.other_slot]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("FAIL  group_slot") && out.contains("history:"), "{out}");
    let (code, _, err) = smanager(&f, &["explain", "QmUnknownUnknownUnknown"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("no file"), "{err}");

    // The sWorker down: explain still answers and says which input it lacked.
    f.sworker.stop().await;
    let e = explain(&f, &f.ours_small).await;
    let missing = e["unavailable"].to_string();
    assert!(missing.contains("sWorker"), "{missing}");
    let space = e["decision"]["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["rule"] == "space").cloned())
        .expect("space rule");
    assert_eq!(space["outcome"], "unknown");
}

#[actix_rt::test]
async fn plan_lists_the_next_round_and_follows_the_strategy() {
    let f = fixture();
    // maxPendingTasks 4: three small slots, one large.
    let plan = |set: &'static str| {
        let f = &f;
        async move {
            let (code, out, err) = smanager(f, &["plan", "--json", "--seed", "7", "--set", set]).await;
            assert_eq!(code, 0, "{out}{err}");
            serde_json::from_str::<Value>(&out).expect("plan JSON")
        }
    };
    let new_only = plan(r#"scheduler.strategy={"newFilesWeight":100,"dbFilesWeight":0}"#).await;
    let taken: Vec<&str> = new_only["take"]
        .as_array()
        .expect("take")
        .iter()
        .filter_map(|t| t["cid"].as_str())
        .collect();
    assert_eq!(taken.len(), 3, "{new_only:#}");
    // New orders by tips, best first: ours_small (100) then the two best of the five (14, 13).
    assert_eq!(
        taken,
        [
            f.ours_small.as_str(),
            f.new_orders[4].as_str(),
            f.new_orders[3].as_str()
        ]
    );
    let skips = &new_only["skip_by_rule"];
    assert_eq!(skips["group_slot"], 1, "{new_only:#}");
    assert_eq!(skips["space"], 1, "{new_only:#}");

    let db_only = plan(r#"scheduler.strategy={"newFilesWeight":0,"dbFilesWeight":100}"#).await;
    let taken: Vec<&str> = db_only["take"]
        .as_array()
        .expect("take")
        .iter()
        .filter_map(|t| t["cid"].as_str())
        .collect();
    // Scanned files by amount, best first; the short-lived one (amount 100) is skipped by lifetime.
    assert_eq!(
        taken,
        [f.scanned[4].as_str(), f.scanned[3].as_str(), f.scanned[2].as_str()]
    );
    assert_eq!(db_only["skip_by_rule"]["lifetime"], 1, "{db_only:#}");

    // A plan changes nothing.
    let statuses: Vec<String> = smanager::db::schema::files::table
        .select(smanager::db::schema::files::status)
        .load::<smanager::db::FileStatus>(&mut f.db.conn())
        .expect("statuses")
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert!(statuses.iter().all(|s| s == "new"), "{statuses:?}");

    // A bad proposal is a configuration error naming the key (exit 2).
    let (code, _, err) = smanager(&f, &["plan", "--set", "scheduler.strategy=fastest"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("scheduler.strategy"), "{err}");
    let (code, _, err) = smanager(&f, &["plan", "--set", "scheduler.nope=1"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("scheduler.nope"), "{err}");
}
