//! The indexer against the devnet chain through the real subxt client: every order the scenario placed is stored
//! exactly once with its size, tips and owner, and every close is recorded — across an actor restart and across a
//! SIGKILL of the whole process in the middle of a catch-up.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bigdecimal::BigDecimal;
use diesel::prelude::*;

use common::{eventually, TestDb};
use smanager::actors::indexer::GetProgress;
use smanager::actors::RestartActor;
use smanager::chain::ss58;
use smanager::config::DatabaseSettings;
use smanager::db::schema::{file_owners, files};
use smanager::db::{state, Db, FileStatus};
use smanager::devnet::chain::scenario::multisig_account;
use smanager::devnet::chain::{account, ChainConfig, DevChain, GroundTruth, ScenarioConfig};
use smanager::devnet::content::ContentStore;
use smanager::devnet::postgres::DevPostgres;

const BLOCKS: u32 = 150;

async fn chain_with_history() -> DevChain {
    let scenario = ScenarioConfig {
        seed: 21,
        order_rate: 3.0,
        max_size: 300_000,
        ..Default::default()
    };
    common::devnet_history(scenario, BLOCKS).await
}

fn seed_cursor(t: &TestDb) {
    let mut c = t.conn();
    state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 0, "0x0").expect("cursor");
}

fn indexed_block(t: &TestDb) -> i64 {
    let mut c = t.conn();
    state::cursor(&mut c, state::INDEXER_CURSOR)
        .ok()
        .flatten()
        .and_then(|c| c.block_number)
        .unwrap_or(-1)
}

/// The database against the scenario's ground truth.
fn check(t: &TestDb, truth: &GroundTruth) {
    check_conn(&mut t.conn(), truth);
}

fn check_conn(c: &mut PgConnection, truth: &GroundTruth) {
    // The devnet's blocks carry what real blocks carry (session ends, multisig, bridge, failed extrinsics...):
    // every one of them must decode.
    common::assert_every_block_decoded(c, "devnet history");
    assert!(
        truth.orders.iter().any(|o| o.owner
            == ss58::encode(
                ss58::CRUST_PREFIX,
                &multisig_account(&[account("alice"), account("bob")], 2)
            )),
        "the history holds a multisig order"
    );
    let mut want: HashMap<&str, (u64, BigDecimal, HashMap<&str, i32>)> = HashMap::new();
    for o in &truth.orders {
        let e = want
            .entry(&o.cid)
            .or_insert((o.size, BigDecimal::from(0), HashMap::new()));
        e.1 += BigDecimal::from(o.tips);
        *e.2.entry(&o.owner).or_insert(0) += 1;
    }
    let rows: Vec<(String, i64, BigDecimal)> = files::table
        .filter(files::seen_by_event.eq(true))
        .select((files::cid, files::size_bytes, files::tips))
        .load(c)
        .expect("files");
    assert_eq!(rows.len(), want.len(), "one row per ordered CID");
    for (cid, size, tips) in rows {
        let (wsize, wtips, wowners) = want
            .get(cid.as_str())
            .unwrap_or_else(|| panic!("{cid} was never ordered"));
        assert_eq!(size as u64, *wsize, "{cid} size");
        assert_eq!(&tips, wtips, "{cid} tips (an order applied twice would add them twice)");
        let owners: Vec<(String, i32)> = file_owners::table
            .filter(file_owners::cid.eq(&cid))
            .select((file_owners::owner, file_owners::orders))
            .load(c)
            .expect("owners");
        let owners: HashMap<&str, i32> = owners.iter().map(|(o, n)| (o.as_str(), *n)).collect();
        assert_eq!(&owners, wowners, "{cid} owners");
    }
    for close in &truth.closes {
        let s: FileStatus = files::table
            .find(&close.cid)
            .select(files::status)
            .first(c)
            .expect("closed file");
        assert!(
            matches!(s, FileStatus::Closed | FileStatus::Cleaned),
            "{} closed, found {s}",
            close.cid
        );
    }
}

#[actix_rt::test]
async fn actor_restarts_during_catch_up_miss_and_duplicate_nothing() {
    let chain = chain_with_history().await;
    // Slow enough (~5 s for the history) that both restarts land in the middle of the catch-up.
    chain.slow_block_reads(Duration::from_millis(500));
    let t = TestDb::migrated();
    seed_cursor(&t);
    let mut settings = t.app_settings();
    settings.chain.end_point = chain.ws_url();
    settings.chain.scan_cooldown_secs = 3600;
    let peers = common::start_indexing(&t, settings, "test/indexer-devnet");
    for target in [30i64, 80] {
        eventually(120, "catch-up in progress", || {
            let b = indexed_block(&t);
            async move { (b >= target).then_some(()) }
        })
        .await;
        assert!(
            indexed_block(&t) < i64::from(BLOCKS),
            "restarted in the middle of the catch-up"
        );
        peers.indexer.do_send(RestartActor);
    }
    chain.slow_block_reads(Duration::ZERO);
    eventually(180, "caught up", || {
        let b = indexed_block(&t);
        async move { (b >= i64::from(BLOCKS)).then_some(()) }
    })
    .await;
    let p = peers.indexer.send(GetProgress).await.expect("progress");
    assert!(p.starts >= 3, "{p:?}");
    check(&t, &chain.ground_truth());
    smanager::app::shutdown(&peers).await;
    chain.stop().await;
}

#[actix_rt::test]
async fn sigkill_during_catch_up_misses_and_duplicates_nothing() {
    let chain = chain_with_history().await;
    // A slow node (16 blocks in flight, each answered a second late: ~10 s for the history) so that the kill lands in
    // the middle of the catch-up however fast the reader is; the restarted process reads at full speed.
    chain.slow_block_reads(Duration::from_secs(1));
    let t = TestDb::migrated();
    seed_cursor(&t);
    let start = || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smanager"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SMANAGER") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("run")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env(
                "SMANAGER__CHAIN__ACCOUNT",
                smanager::chain::ss58::encode(66, &account("m0")),
            )
            .env("SMANAGER__CHAIN__END_POINT", chain.ws_url())
            .env("SMANAGER__CHAIN__POLL_INTERVAL_MS", "100")
            .env("SMANAGER__SWORKER__END_POINT", "http://127.0.0.1:9")
            .env("SMANAGER__IPFS__END_POINT", "http://127.0.0.1:9")
            .env("SMANAGER__DATABASE__URL", &t.url)
            .env("SMANAGER__ADMIN__BIND", "127.0.0.1:0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smanager")
    };
    let mut child = start();
    let deadline = Instant::now() + Duration::from_secs(120);
    while indexed_block(&t) < 40 {
        assert!(Instant::now() < deadline, "no progress");
        assert!(child.try_wait().expect("wait").is_none(), "smanager exited");
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let killed_at = indexed_block(&t);
    assert!(
        killed_at < i64::from(BLOCKS),
        "killed in the middle of the catch-up, found block {killed_at} indexed"
    );
    chain.slow_block_reads(Duration::ZERO);
    let mut child = common::KillOnDrop(start());
    let deadline = Instant::now() + Duration::from_secs(180);
    while indexed_block(&t) < i64::from(BLOCKS) {
        assert!(Instant::now() < deadline, "no progress after restart");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status();
    let _ = child.0.wait();
    check(&t, &chain.ground_truth());
    chain.stop().await;
}

/// Finalized heads arrive by subscription (`chain_subscribeFinalizedHeads`): with a poll interval of a minute, an order
/// placed after the indexer went idle is still indexed at once. Polling alone would wait for the next poll.
#[actix_rt::test]
async fn new_heads_arrive_by_subscription_not_by_poll() {
    let content = ContentStore::new();
    let chain = DevChain::start(ChainConfig::quiet(300, vec![account("m0")]), Arc::new(content.clone()))
        .await
        .expect("chain");
    let t = TestDb::migrated();
    let mut settings = t.app_settings();
    settings.chain.end_point = chain.ws_url();
    settings.chain.scan_cooldown_secs = 3600;
    settings.chain.poll_interval_ms = 60_000;
    let peers = common::start_indexing(&t, settings, "test/indexer-subscription");
    eventually(30, "first blocks indexed", || {
        let b = indexed_block(&t);
        async move { (b >= 1).then_some(()) }
    })
    .await;
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    let cid = content.build(71, 10_000, false, true).cid;
    let placed = Instant::now();
    chain.order_now(&cid, 10_000, 1);
    eventually(30, "the order indexed well before the next poll", || {
        let mut c = t.conn();
        let found: Option<String> = files::table.find(&cid).select(files::cid).first(&mut c).ok();
        async move { found.map(|_| ()) }
    })
    .await;
    assert!(placed.elapsed() < Duration::from_secs(30), "{:?}", placed.elapsed());
    smanager::app::shutdown(&peers).await;
    chain.stop().await;
}

/// PostgreSQL crashing in the middle of a catch-up and coming back must lose and duplicate nothing. The cluster runs
/// with `synchronous_commit = off`, a common tuning, so an immediate stop loses its last commits, whole batches with
/// their cursor: the indexer must find the cursor behind the blocks it holds and read them again.
#[actix_rt::test]
async fn postgres_crashes_during_catch_up_lose_and_duplicate_nothing() {
    let chain = chain_with_history().await;
    // A longer history than the other tests', read from a slow node (~3 s for it all): the crashes must land in the
    // middle of the catch-up however fast the reader is.
    for _ in 0..300 {
        chain.produce_block();
    }
    chain.slow_block_reads(Duration::from_millis(100));
    let total = i64::from(BLOCKS) + 300;
    let pg = DevPostgres::start(None).expect("a throwaway PostgreSQL cluster (the local initdb and pg_ctl)");
    {
        let mut c = PgConnection::establish(&pg.url).expect("connect");
        diesel::sql_query("ALTER SYSTEM SET synchronous_commit = off")
            .execute(&mut c)
            .expect("synchronous_commit");
        diesel::sql_query("SELECT pg_reload_conf()")
            .execute(&mut c)
            .expect("reload");
    }
    let database = DatabaseSettings {
        url: pg.url.clone(),
        pool_size: 4,
        connect_timeout_secs: 2,
    };
    let db = Db::connect(&database).expect("connect");
    db.migrate().expect("migrate");
    let conn = || PgConnection::establish(&pg.url).ok();
    let indexed = || {
        conn()
            .and_then(|mut c| state::cursor(&mut c, state::INDEXER_CURSOR).ok().flatten())
            .and_then(|c| c.block_number)
            .unwrap_or(-1)
    };
    {
        let mut c = conn().expect("connect");
        state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 0, "0x0").expect("cursor");
    }
    let mut settings = common::app_settings(database);
    settings.chain.end_point = chain.ws_url();
    settings.chain.scan_cooldown_secs = 3600;
    let peers = common::start_indexing_on(db, settings, "test/pg-crash");
    let mut crashes = 0;
    for target in [30i64, 90] {
        eventually(120, "catch-up in progress", || {
            let b = indexed();
            async move { (b >= target).then_some(()) }
        })
        .await;
        if indexed() >= total {
            break;
        }
        pg.stop_server().expect("crash PostgreSQL");
        crashes += 1;
        actix_rt::time::sleep(Duration::from_millis(500)).await;
        pg.start_server().expect("restart PostgreSQL");
    }
    assert!(
        crashes >= 1,
        "PostgreSQL crashed at least once in the middle of the catch-up"
    );
    chain.slow_block_reads(Duration::ZERO);
    eventually(180, "caught up after the crashes", || {
        let b = indexed();
        async move { (b >= total).then_some(()) }
    })
    .await;
    smanager::app::shutdown(&peers).await;
    check_conn(&mut conn().expect("connect"), &chain.ground_truth());
    chain.stop().await;
}
