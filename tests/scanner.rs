//! The FilesV2 scanner against the devnet chain: a full scan stores every file once with its expiry, replicas and
//! amount; interrupted mid-scan (the indexer actor restarted), it resumes from its persisted cursor.

mod common;

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use futures_util::future::LocalBoxFuture;

use common::{eventually, TestDb};
use smanager::actors::{self, Deps, RestartActor};
use smanager::chain::{ChainError, ChainSource, GroupView, IndexedBlock};
use smanager::db::schema::files;
use smanager::db::state;
use smanager::devnet::chain::{account, ChainConfig, DevChain, GroupSpec, ScenarioConfig};
use smanager::devnet::content::ContentStore;
use smanager::ipfs::KuboClient;
use smanager::sworker::SworkerClient;

/// The real client, recording where each key page started.
struct Recording {
    inner: Rc<dyn ChainSource>,
    starts: RefCell<Vec<Option<Vec<u8>>>>,
}

impl ChainSource for Recording {
    fn finalized_head(&self) -> LocalBoxFuture<'_, Result<u64, ChainError>> {
        self.inner.finalized_head()
    }
    fn block(&self, n: u64) -> LocalBoxFuture<'_, Result<IndexedBlock, ChainError>> {
        self.inner.block(n)
    }
    fn group(&self, a: [u8; 32]) -> LocalBoxFuture<'_, Result<GroupView, ChainError>> {
        self.inner.group(a)
    }
    fn values(&self, keys: Vec<Vec<u8>>) -> LocalBoxFuture<'_, Result<Vec<Option<Vec<u8>>>, ChainError>> {
        self.inner.values(keys)
    }
    fn keys_paged(
        &self,
        prefix: Vec<u8>,
        count: u32,
        start: Option<Vec<u8>>,
    ) -> LocalBoxFuture<'_, Result<Vec<Vec<u8>>, ChainError>> {
        if count > 1 && prefix == smanager::chain::keys::files_v2_prefix() {
            self.starts.borrow_mut().push(start.clone());
        }
        Box::pin(async move {
            // Slow pages down so the test can interrupt the scan in its middle.
            actix_rt::time::sleep(Duration::from_millis(30)).await;
            self.inner.keys_paged(prefix, count, start).await
        })
    }
}

/// A devnet chain with `prefill` FilesV2 entries at genesis.
async fn prefilled_chain(seed: u64, prefill: u64) -> DevChain {
    DevChain::start(
        ChainConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            block_ms: 0,
            scenario: ScenarioConfig {
                seed,
                order_rate: 2.0,
                ..Default::default()
            },
            group: GroupSpec {
                owner: account("owner"),
                members: vec![account("m0")],
            },
            prefill,
        },
        Arc::new(ContentStore::new()),
    )
    .await
    .expect("chain")
}

/// Settings that scan `chain` in pages of 100, `write_rows` rows per write, one round an hour.
fn scan_settings(t: &TestDb, chain: &DevChain, write_rows: u32) -> smanager::config::Settings {
    let mut settings = t.app_settings();
    settings.chain.end_point = chain.ws_url();
    settings.chain.scan_page_size = 100;
    settings.chain.scan_write_rows = write_rows;
    settings.chain.scan_batch_size = 30;
    settings.chain.scan_cooldown_secs = 3600;
    settings
}

/// The actors' dependencies with `chain`; IPFS and the sWorker are unreachable (the scanner needs neither).
fn deps(t: &TestDb, settings: smanager::config::Settings, chain: Rc<dyn ChainSource>) -> Deps {
    Deps {
        db: t.db(),
        settings: Rc::new(settings),
        chain,
        ipfs: Rc::new(KuboClient::new("http://127.0.0.1:9", Duration::from_secs(1))),
        sworker: Rc::new(SworkerClient::new("http://127.0.0.1:9", Duration::from_secs(1))),
        holder: "test/scanner".into(),
    }
}

#[actix_rt::test]
async fn full_scan_and_resume_from_cursor() {
    let t = TestDb::migrated();
    let chain = prefilled_chain(4, 3000).await;
    for _ in 0..5 {
        chain.produce_block();
    }
    let expected = chain.with_state(|s| s.files.clone()).unwrap_or_default();
    // Two pages per write, so the cursor moves many times in one round.
    let settings = scan_settings(&t, &chain, 200);
    let recording = Rc::new(Recording {
        inner: smanager::chain::client::connect(&settings.chain),
        starts: RefCell::new(Vec::new()),
    });
    let peers = actors::start(deps(&t, settings, recording.clone()));
    let cursor = |t: &TestDb| {
        let mut c = t.conn();
        state::cursor(&mut c, state::SCANNER_CURSOR).ok().flatten()
    };
    let mid = eventually(60, "scan half way", || {
        let c = cursor(&t).filter(|c| c.scan_round == 0).and_then(|c| c.scan_key);
        let scanned: i64 = files::table
            .filter(files::seen_by_scan.eq(true))
            .count()
            .get_result(&mut t.conn())
            .unwrap_or(0);
        async move { c.filter(|_| scanned >= 1000) }
    })
    .await;
    peers.indexer.do_send(RestartActor);
    eventually(120, "round complete", || {
        let done = cursor(&t).is_some_and(|c| c.scan_round >= 1 && c.scan_key.is_none());
        async move { done.then_some(()) }
    })
    .await;
    smanager::app::shutdown(&peers).await;

    // Resumed: after the restart, a page started at (or after) the cursor seen mid-scan, and the scan did not
    // start over from the beginning within round 1.
    let starts = recording.starts.borrow().clone();
    let mid = hex::decode(mid.trim_start_matches("0x")).expect("hex");
    assert!(
        starts.iter().any(|s| s.as_ref().is_some_and(|k| k >= &mid)),
        "pages continued past the cursor"
    );
    let pages_needed = expected.len() / 100 + 1;
    let pages_per_write = 2;
    // Two round-start probes, the page in flight at the restart, the pages held for the next write, and the writes
    // whose cursor was not yet stored (the cursor trails what is stored by at most SCAN_WRITERS writes).
    assert!(
        starts.len() <= pages_needed + 2 + (smanager::actors::scanner::SCAN_WRITERS + 1) * pages_per_write,
        "{} pages for {} keys: the restart re-scanned instead of resuming",
        starts.len(),
        expected.len()
    );

    // Every FilesV2 entry stored once, with the chain's values.
    let mut c = t.conn();
    let rows: Vec<(String, i64, i32, bigdecimal::BigDecimal)> = files::table
        .filter(files::seen_by_scan.eq(true))
        .select((files::cid, files::expired_at, files::replicas, files::amount))
        .load(&mut c)
        .expect("rows");
    assert_eq!(rows.len(), expected.len(), "one row per FilesV2 entry");
    for (cid, expired, replicas, amount) in rows {
        let f = expected.get(&cid).unwrap_or_else(|| panic!("{cid} is not on chain"));
        assert_eq!(expired, i64::from(f.expired_at), "{cid}");
        assert_eq!(replicas as u32, f.reported_replica_count, "{cid}");
        assert_eq!(amount, bigdecimal::BigDecimal::from(f.amount), "{cid}");
    }
    chain.stop().await;
}

#[test]
fn a_late_page_write_never_moves_the_cursor_back_nor_reopens_a_round() {
    // Page writes run concurrently and may outlive a scanner restart: the cursor only moves forward within its round.
    let t = TestDb::migrated();
    let mut c = t.conn();
    let cursor = |c: &mut PgConnection| {
        let cur = state::cursor(c, state::SCANNER_CURSOR).expect("cursor").expect("row");
        (cur.scan_key, cur.scan_round)
    };
    state::advance_scan_cursor(&mut c, state::SCANNER_CURSOR, "0x0a10", 0).expect("first page");
    state::advance_scan_cursor(&mut c, state::SCANNER_CURSOR, "0x0a30", 0).expect("third page");
    state::advance_scan_cursor(&mut c, state::SCANNER_CURSOR, "0x0a20", 0).expect("second page, late");
    assert_eq!(cursor(&mut c), (Some("0x0a30".to_string()), 0), "never backwards");
    state::advance_scan_cursor(&mut c, state::SCANNER_CURSOR, "0x0a3001", 0).expect("longer key");
    assert_eq!(cursor(&mut c), (Some("0x0a3001".to_string()), 0));
    // The round completes; a write of that round committing afterwards changes nothing.
    state::set_scan_cursor(&mut c, state::SCANNER_CURSOR, None, 1).expect("round done");
    state::advance_scan_cursor(&mut c, state::SCANNER_CURSOR, "0x0b00", 0).expect("late write");
    assert_eq!(cursor(&mut c), (None, 1), "a finished round stays finished");
    state::advance_scan_cursor(&mut c, state::SCANNER_CURSOR, "0x0100", 1).expect("next round's first page");
    assert_eq!(cursor(&mut c), (Some("0x0100".to_string()), 1));
}

/// The scan copies the files it does not know yet. When the indexer inserts one of them between the scan's look-up
/// and its copy, the copy fails on the unique key; the write is then done again as upserts: nothing is lost, the
/// order's facts stay, the scan's are added, and the cursor moves.
#[test]
fn a_file_the_indexer_inserts_while_the_scan_copies_it_is_upserted_instead() {
    use smanager::chain::ScannedFile;
    use smanager::db::files as dbfiles;
    let t = TestDb::migrated();
    let ordered = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG".to_string();
    let other = "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o".to_string();
    let scanned = |cid: &str| ScannedFile {
        cid: cid.to_string(),
        size: 4096,
        expired_at: 900_000,
        amount: 1_000_000_000_000,
        replicas: 3,
    };
    // The indexer's transaction: the order's row, not committed yet.
    let mut indexer = t.conn();
    diesel::sql_query("BEGIN").execute(&mut indexer).expect("begin");
    diesel::sql_query(
        "INSERT INTO files (cid, size_bytes, tips, seen_by_event, first_seen_block, status)
         VALUES ($1, 4096, 7, TRUE, 12, 'new')",
    )
    .bind::<diesel::sql_types::Text, _>(&ordered)
    .execute(&mut indexer)
    .expect("order");
    // The scan does not see it, so it copies it, and the copy waits for the indexer's transaction.
    let scan = {
        let rows = vec![scanned(&ordered), scanned(&other)];
        let mut c = t.conn();
        std::thread::spawn(move || dbfiles::upsert_scanned(&mut c, &rows, &[], Some("0x01"), 0))
    };
    t.wait_for_a_lock_waiter("the scan's copy never waited for the order");
    diesel::sql_query("COMMIT").execute(&mut indexer).expect("commit");
    let n = scan.join().expect("scan thread").expect("the scan's write");
    assert_eq!(n, 2);

    let mut c = t.conn();
    let rows: Vec<(String, bool, bool, Option<i64>, i64, i32)> = files::table
        .select((
            files::cid,
            files::seen_by_event,
            files::seen_by_scan,
            files::first_seen_block,
            files::expired_at,
            files::replicas,
        ))
        .order(files::cid)
        .load(&mut c)
        .expect("files");
    assert_eq!(rows.len(), 2, "{rows:?}");
    let by_cid: std::collections::HashMap<_, _> = rows.into_iter().map(|r| (r.0.clone(), r)).collect();
    let o = &by_cid[&ordered];
    assert!(o.1 && o.2, "the order's row keeps its event and gains the scan: {o:?}");
    assert_eq!((o.3, o.4, o.5), (Some(12), 900_000, 3), "{o:?}");
    let x = &by_cid[&other];
    assert!(!x.1 && x.2, "{x:?}");
    let cursor = state::cursor(&mut c, state::SCANNER_CURSOR).expect("cursor");
    assert_eq!(cursor.and_then(|c| c.scan_key).as_deref(), Some("0x01"));
}

/// A re-scan that finds a file's chain facts unchanged does not rewrite its row (a rewrite is a new tuple and an
/// entry in every index of `files`); a change of any fact, or a closed file, is still written.
#[test]
fn a_rescan_leaves_unchanged_files_untouched() {
    use smanager::chain::ScannedFile;
    use smanager::db::files as dbfiles;
    let t = TestDb::migrated();
    let mut c = t.conn();
    let cid = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
    let file = |amount: u128| ScannedFile {
        cid: cid.to_string(),
        size: 4096,
        expired_at: 900_000,
        amount,
        replicas: 3,
    };
    #[derive(QueryableByName, Debug, PartialEq)]
    struct Version {
        #[diesel(sql_type = diesel::sql_types::Text)]
        xmin: String,
    }
    let version = |c: &mut diesel::PgConnection| {
        diesel::sql_query("SELECT xmin::text AS xmin FROM files WHERE cid = $1")
            .bind::<diesel::sql_types::Text, _>(cid)
            .get_result::<Version>(c)
            .expect("row")
    };
    assert_eq!(
        dbfiles::upsert_scanned(&mut c, &[file(5)], &[], Some("0x01"), 0).expect("first"),
        1
    );
    let first = version(&mut c);
    assert_eq!(
        dbfiles::upsert_scanned(&mut c, &[file(5)], &[], Some("0x02"), 0).expect("again"),
        1
    );
    assert_eq!(version(&mut c), first, "an unchanged file was rewritten");
    dbfiles::upsert_scanned(&mut c, &[file(6)], &[], Some("0x03"), 0).expect("changed");
    let changed = version(&mut c);
    assert_ne!(changed, first, "a changed amount was not written");
    let amount: bigdecimal::BigDecimal = files::table
        .find(cid)
        .select(files::amount)
        .first(&mut c)
        .expect("amount");
    assert_eq!(amount, bigdecimal::BigDecimal::from(6));
    // The cursor moved with every write, rewritten or not.
    let cursor = state::cursor(&mut c, state::SCANNER_CURSOR).expect("cursor");
    assert_eq!(cursor.and_then(|c| c.scan_key).as_deref(), Some("0x03"));
}

/// A write that expects only new files copies them without looking them up; one file already stored makes it fall
/// back to the look-up, and that file is upserted (its new amount written), not lost or duplicated.
#[test]
fn a_write_expecting_new_files_falls_back_when_one_is_known() {
    use smanager::db::files as dbfiles;
    let t = TestDb::migrated();
    let mut c = t.conn();
    let file = |n: u32, amount: u128| smanager::chain::ScannedFile {
        cid: format!("QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPb{n:02}"),
        size: 4096,
        expired_at: 900_000,
        amount,
        replicas: 3,
    };
    dbfiles::upsert_scanned(&mut c, &[file(1, 5)], &[], Some("0x01"), 0).expect("first");
    let w = dbfiles::write_scanned_batch(
        &mut c,
        &[file(1, 7), file(2, 1), file(3, 1)],
        &[],
        Some("0x02"),
        0,
        true,
    )
    .expect("a write with one known file");
    assert_eq!(
        w,
        dbfiles::ScannedWrite {
            rows: 3,
            all_new: false
        }
    );
    let w = dbfiles::write_scanned_batch(&mut c, &[file(4, 1), file(5, 1)], &[], Some("0x03"), 0, true)
        .expect("a write of new files");
    assert_eq!(w, dbfiles::ScannedWrite { rows: 2, all_new: true });
    let w = dbfiles::write_scanned_batch(&mut c, &[file(6, 1)], &[], Some("0x04"), 0, false)
        .expect("a write with the look-up");
    assert_eq!(w, dbfiles::ScannedWrite { rows: 1, all_new: true });
    let amount: bigdecimal::BigDecimal = files::table
        .find(file(1, 0).cid)
        .select(files::amount)
        .first(&mut c)
        .expect("amount");
    assert_eq!(amount, bigdecimal::BigDecimal::from(7));
    let stored: i64 = files::table.count().get_result(&mut c).expect("count");
    assert_eq!(stored, 6);
    let cursor = state::cursor(&mut c, state::SCANNER_CURSOR).expect("cursor");
    assert_eq!(cursor.and_then(|c| c.scan_key).as_deref(), Some("0x04"));
}

/// Consecutive pages are written together, `chain.scanWriteRows` rows at a time: the rows one transaction wrote
/// share its `xmin`, so a scan of N files in pages of 100 and writes of 400 shows about N / 400 of them, not N / 100.
#[actix_rt::test]
async fn a_scan_writes_its_pages_in_batches_of_scan_write_rows() {
    let t = TestDb::migrated();
    let chain = prefilled_chain(5, 1500).await;
    let on_chain = chain.with_state(|s| s.files.len()).unwrap_or_default();
    let settings = scan_settings(&t, &chain, 400);
    let client = smanager::chain::client::connect(&settings.chain);
    // The scanner alone: no other actor rewrites the rows it wrote.
    let scan = actix_rt::spawn(smanager::actors::scanner::run(
        deps(&t, settings, client),
        Rc::new(Default::default()),
    ));
    eventually(60, "round complete", || {
        let done = state::cursor(&mut t.conn(), state::SCANNER_CURSOR)
            .ok()
            .flatten()
            .is_some_and(|c| c.scan_round >= 1);
        async move { done.then_some(()) }
    })
    .await;
    scan.abort();
    chain.stop().await;

    #[derive(QueryableByName)]
    struct Counts {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        files: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        writes: i64,
    }
    let n = diesel::sql_query(
        "SELECT count(*) AS files, count(DISTINCT xmin::text) AS writes FROM files WHERE seen_by_scan",
    )
    .get_result::<Counts>(&mut t.conn())
    .expect("counts");
    assert_eq!(n.files as usize, on_chain, "every FilesV2 entry stored");
    let most = on_chain.div_ceil(400) as i64 + 1;
    assert!(
        (1..=most).contains(&n.writes),
        "{} files written by {} transactions, expected at most {most}",
        n.files,
        n.writes
    );
}
