//! The Indexer actor against a real PostgreSQL: exact catch-up, restart in the middle of it, closes and re-orders.
//! The chain side is a scripted `ChainSource` (the devnet chain exercises the subxt client separately).

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use diesel::prelude::*;
use futures_util::future::LocalBoxFuture;

use common::{eventually, TestDb};
use smanager::actors::indexer::GetProgress;
use smanager::actors::{self, Deps, RestartActor};
use smanager::chain::{ChainError, ChainEvent, ChainSource, CloseReason, FileOrder, IndexedBlock};
use smanager::db::schema::{cleanups, file_owners, files};
use smanager::db::{CleanupStatus, FileStatus};
use smanager::ipfs::KuboClient;
use smanager::sworker::SworkerClient;

/// Blocks scripted in advance; `delay` slows every block down so a test can interrupt a catch-up.
struct ScriptedChain {
    blocks: RefCell<Vec<IndexedBlock>>,
    delay: Duration,
    fail_once_at: RefCell<Option<u64>>,
}

impl ChainSource for ScriptedChain {
    fn finalized_head(&self) -> LocalBoxFuture<'_, Result<u64, ChainError>> {
        let head = self.blocks.borrow().last().map_or(0, |b| b.number);
        Box::pin(async move { Ok(head) })
    }
    fn block(&self, number: u64) -> LocalBoxFuture<'_, Result<IndexedBlock, ChainError>> {
        Box::pin(async move {
            actix_rt::time::sleep(self.delay).await;
            if *self.fail_once_at.borrow() == Some(number) {
                self.fail_once_at.replace(None);
                return Err(ChainError::Unavailable("connection reset".into()));
            }
            self.blocks
                .borrow()
                .iter()
                .find(|b| b.number == number)
                .cloned()
                .ok_or(ChainError::NotFinalized(number))
        })
    }
}

/// The 60 scripted blocks, each served after `delay`, the chain failing once at block `fail_once_at`.
fn scripted(delay: Duration, fail_once_at: Option<u64>) -> Rc<ScriptedChain> {
    Rc::new(ScriptedChain {
        blocks: RefCell::new(script()),
        delay,
        fail_once_at: RefCell::new(fail_once_at),
    })
}

/// Waits until the indexer has applied all 60 scripted blocks.
async fn until_all_applied(peers: &actors::Peers) {
    eventually(60, "indexer reaches block 61", || {
        let a = peers.indexer.clone();
        async move { (a.send(GetProgress).await.ok()?.next_block == Some(61)).then_some(()) }
    })
    .await;
}

const CIDS: [&str; 3] = [
    "QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn",
    "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
    "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",
];

fn order(cid: &str, size: u64, tips: u128, owner: &str) -> ChainEvent {
    ChainEvent::Ordered(FileOrder {
        cid: cid.into(),
        size,
        tips,
        owner: owner.into(),
    })
}

/// A block with these events and nothing else the writer reads (hash `0x<number>`, no timestamp).
fn block_of(number: u64, events: Vec<ChainEvent>) -> IndexedBlock {
    IndexedBlock {
        number,
        hash: format!("0x{number:02x}"),
        timestamp_ms: None,
        events,
    }
}

/// 60 blocks from 1; every block orders a unique CID-like name; some blocks repeat orders, close or carry junk.
fn script() -> Vec<IndexedBlock> {
    (1..=60u64)
        .map(|n| {
            let mut events = vec![order(&format!("Qm{n:044}"), 1000 + n, u128::from(n), "alice")];
            if n == 10 {
                events.push(order(CIDS[0], 500, 7, "alice"));
            }
            if n == 20 {
                events.push(order(CIDS[0], 500, 5, "bob"));
            }
            if n == 30 {
                events.push(ChainEvent::Closed {
                    cid: CIDS[0].into(),
                    reason: CloseReason::Closed,
                });
            }
            if n == 40 {
                events.push(order(CIDS[0], 500, 1, "carol"));
                events.push(ChainEvent::Invalid {
                    raw: "\u{fffd}junk".into(),
                    reason: "MerkleRoot is not UTF-8".into(),
                });
            }
            if n == 50 {
                events.push(ChainEvent::Closed {
                    cid: CIDS[1].into(),
                    reason: CloseReason::Illegal,
                });
            }
            IndexedBlock {
                number: n,
                hash: format!("0x{n:064x}"),
                timestamp_ms: Some(1_700_000_000_000 + n * 6000),
                events,
            }
        })
        .collect()
}

fn deps(t: &TestDb, chain: Rc<dyn ChainSource>) -> Deps {
    let settings = t.app_settings();
    Deps {
        db: t.db(),
        // Nothing listens on port 9: IPFS and sWorker are "down", which must not disturb indexing.
        ipfs: Rc::new(KuboClient::new("http://127.0.0.1:9", Duration::from_secs(1))),
        sworker: Rc::new(SworkerClient::new("http://127.0.0.1:9", Duration::from_secs(1))),
        settings: Rc::new(settings),
        chain,
        holder: "test/indexer".into(),
    }
}

fn seed_cursor(t: &TestDb, block: i64) {
    let mut c = t.conn();
    smanager::db::state::set_block_cursor(&mut c, "indexer", block, "0x0").expect("cursor");
}

fn check_exactly_once(t: &TestDb) {
    let mut c = t.conn();
    let n: i64 = files::table
        .filter(files::cid.like("Qm0%"))
        .count()
        .get_result(&mut c)
        .expect("count");
    assert_eq!(n, 60, "one row per ordered CID");
    let sizes: Vec<(String, i64, bigdecimal::BigDecimal)> = files::table
        .filter(files::cid.like("Qm0%"))
        .select((files::cid, files::size_bytes, files::tips))
        .load(&mut c)
        .expect("rows");
    for (cid, size, tips) in sizes {
        let n: u64 = cid.trim_start_matches("Qm").parse().expect("number");
        assert_eq!(size as u64, 1000 + n, "{cid}");
        // Tips add up per order: an order applied twice would double them.
        assert_eq!(tips, bigdecimal::BigDecimal::from(n), "{cid}");
    }
    // The repeated CID: tips summed over its four orders, three owners, closed then re-opened by the third order.
    let (status, tips): (FileStatus, bigdecimal::BigDecimal) = files::table
        .find(CIDS[0])
        .select((files::status, files::tips))
        .first(&mut c)
        .expect("repeated cid");
    assert_eq!(tips, bigdecimal::BigDecimal::from(13));
    assert_eq!(status, FileStatus::New, "a new order re-opens a closed file");
    // ... and starts its pursuit afresh (giving up counts from here); a file never closed keeps its first one.
    let ages: Vec<(String, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)> = files::table
        .filter(files::cid.eq_any([CIDS[0], "Qm00000000000000000000000000000000000000000001"]))
        .select((files::cid, files::created_at, files::pursued_since))
        .load(&mut c)
        .expect("ages");
    assert_eq!(ages.len(), 2);
    for (cid, created, pursued) in ages {
        if cid == CIDS[0] {
            assert!(
                pursued > created,
                "re-opened file keeps its first-seen time but restarts its pursuit"
            );
        } else {
            assert_eq!(pursued, created, "{cid}");
        }
    }
    let owners: i64 = file_owners::table
        .filter(file_owners::cid.eq(CIDS[0]))
        .count()
        .get_result(&mut c)
        .expect("owners");
    assert_eq!(owners, 3);
    let cl: Vec<(String, CleanupStatus)> = cleanups::table
        .select((cleanups::cid, cleanups::status))
        .order(cleanups::id)
        .load(&mut c)
        .expect("cleanups");
    assert_eq!(
        cl,
        vec![
            (CIDS[0].to_string(), CleanupStatus::Cancelled),
            (CIDS[1].to_string(), CleanupStatus::Pending)
        ]
    );
    let invalid: i64 = files::table
        .filter(files::status.eq(FileStatus::Invalid))
        .count()
        .get_result(&mut c)
        .expect("invalid");
    assert_eq!(invalid, 1, "bad chain data is recorded, not dropped");
}

#[actix_rt::test]
async fn catches_up_every_block_exactly_once_even_across_a_chain_error() {
    let t = TestDb::migrated();
    seed_cursor(&t, 0);
    let chain = scripted(Duration::ZERO, Some(33));
    let peers = actors::start(deps(&t, chain));
    until_all_applied(&peers).await;
    check_exactly_once(&t);
    peers.shutdown().await;
}

#[actix_rt::test]
async fn a_catch_up_gathers_its_blocks_into_few_transactions() {
    let t = TestDb::migrated();
    seed_cursor(&t, 0);
    // Blocks arrive in bursts of 16 (the prefetch depth) every 20 ms: a writer that wrote each burst as it came would
    // need four transactions for the 60 blocks; gathering them (up to 100 ms, 64 blocks) takes one, two on a slow
    // machine.
    let chain = scripted(Duration::from_millis(20), None);
    let writes = &smanager::metrics::METRICS.indexer_write_blocks;
    let before = writes.get_sample_count();
    let peers = actors::start(deps(&t, chain));
    until_all_applied(&peers).await;
    peers.shutdown().await;
    check_exactly_once(&t);
    let runs = writes.get_sample_count() - before;
    assert!((1..=2).contains(&runs), "60 blocks written in {runs} transactions");
}

#[actix_rt::test]
async fn restart_in_the_middle_of_a_catch_up_misses_and_duplicates_nothing() {
    let t = TestDb::migrated();
    seed_cursor(&t, 0);
    let chain = scripted(Duration::from_millis(20), None);
    let peers = actors::start(deps(&t, chain));
    // Interrupt twice while it is catching up.
    for target in [15u64, 35] {
        eventually(60, "indexer in the middle of the catch-up", || {
            let a = peers.indexer.clone();
            async move { (a.send(GetProgress).await.ok()?.next_block? > target).then_some(()) }
        })
        .await;
        peers.indexer.do_send(RestartActor);
    }
    let p = eventually(60, "indexer reaches block 61 after restarts", || {
        let a = peers.indexer.clone();
        async move {
            let p = a.send(GetProgress).await.ok()?;
            (p.next_block == Some(61)).then_some(p)
        }
    })
    .await;
    assert!(
        p.starts >= 3,
        "the supervisor restarted the indexer ({} starts)",
        p.starts
    );
    check_exactly_once(&t);
    peers.shutdown().await;
}

#[test]
fn a_block_applied_twice_is_written_once() {
    let t = TestDb::migrated();
    let mut c = t.conn();
    let block = script().remove(9);
    let first = smanager::db::files::apply_block(&mut c, &block).expect("apply");
    assert!(!first.already_applied && first.ordered == 2);
    let again = smanager::db::files::apply_block(&mut c, &block).expect("apply again");
    assert!(again.already_applied && again.ordered == 0);
    let tips: bigdecimal::BigDecimal = files::table
        .find(CIDS[0])
        .select(files::tips)
        .first(&mut c)
        .expect("row");
    assert_eq!(tips, bigdecimal::BigDecimal::from(7));
}

/// A batch whose first block is past the cursor's next one (a lost commit, or a cursor moved back) is refused whole:
/// nothing written, the cursor unchanged, and the error says where to read again from.
#[test]
fn a_batch_past_a_gap_after_the_cursor_is_refused_and_writes_nothing() {
    let t = TestDb::migrated();
    let mut c = t.conn();
    let blocks = script();
    smanager::db::files::apply_blocks(&mut c, &blocks[..3]).expect("blocks 1-3");
    let before = dump(&mut c);
    let err = smanager::db::files::apply_blocks(&mut c, &blocks[4..6]).expect_err("block 4 is missing");
    assert!(
        matches!(err, smanager::db::DbError::CursorBehind { cursor: 3, next: 5 }),
        "{err}"
    );
    assert_eq!(dump(&mut c), before, "nothing written");
    // From the cursor on, the same blocks apply.
    smanager::db::files::apply_blocks(&mut c, &blocks[3..6]).expect("blocks 4-6");
}

/// Everything the indexer writes, as text rows, for comparing two databases.
fn dump(c: &mut PgConnection) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text)]
        line: String,
    }
    diesel::sql_query(
        "SELECT 'file ' || cid || ' ' || size_bytes || ' ' || tips || ' ' || status || ' ' || \
                coalesce(status_reason, '-') || ' ' || coalesce(first_seen_block, -1) || ' ' || \
                coalesce(last_order_block, -1) || ' ' || seen_by_event AS line FROM files \
         UNION ALL SELECT 'owner ' || cid || ' ' || owner || ' ' || orders || ' ' || first_block || ' ' || last_block \
           FROM file_owners \
         UNION ALL SELECT 'cleanup ' || cid || ' ' || status || ' ' || reason FROM cleanups \
         UNION ALL SELECT 'cursor ' || name || ' ' || coalesce(block_number, -1) || ' ' || coalesce(block_hash, '-') \
           FROM chain_cursors ORDER BY 1",
    )
    .load::<Line>(c)
    .expect("dump")
    .into_iter()
    .map(|l| l.line)
    .collect()
}

/// What the status page counts must be what is in `files`, however it was written.
fn assert_counts_exact(c: &mut PgConnection) {
    let real: Vec<(FileStatus, i64)> = files::table
        .group_by(files::status)
        .select((files::status, diesel::dsl::count_star()))
        .load(c)
        .expect("real counts");
    let counted = smanager::db::files::count_by_status(c).expect("counts");
    for (status, n) in counted {
        let want = real.iter().find(|r| r.0.to_string() == status).map_or(0, |r| r.1);
        assert_eq!(n, want, "count of {status}");
    }
}

#[test]
fn many_blocks_in_one_transaction_write_what_block_by_block_writes() {
    // Catch-up applies what has arrived together: runs of orders span blocks, closes and junk still land in chain
    // order, and re-applying blocks already written changes nothing.
    let one = TestDb::migrated();
    let many = TestDb::migrated();
    let blocks = script();
    {
        let mut c = one.conn();
        for b in &blocks {
            smanager::db::files::apply_block(&mut c, b).expect("apply one");
        }
        assert_counts_exact(&mut c);
    }
    let mut c = many.conn();
    let mut ordered = 0;
    for (from, to) in [(0, 7), (7, 20), (15, 41), (41, 60)] {
        let outcomes = smanager::db::files::apply_blocks(&mut c, &blocks[from..to]).expect("apply many");
        assert_eq!(outcomes.len(), to - from);
        // Blocks 16..=20 come twice: the second time they are skipped.
        for (b, o) in blocks[from..to].iter().zip(&outcomes) {
            assert_eq!(o.already_applied, from == 15 && b.number <= 20, "block {}", b.number);
        }
        ordered += outcomes.iter().map(|o| o.ordered).sum::<usize>();
    }
    assert_eq!(ordered, 63, "60 new CIDs and 3 repeat orders");
    assert_eq!(dump(&mut one.conn()), dump(&mut c));
    let orders: Vec<(String, i32, i64, i64)> = file_owners::table
        .filter(file_owners::cid.eq(CIDS[0]))
        .order(file_owners::first_block)
        .select((
            file_owners::owner,
            file_owners::orders,
            file_owners::first_block,
            file_owners::last_block,
        ))
        .load(&mut c)
        .expect("owners");
    assert_eq!(
        orders,
        vec![
            ("alice".to_string(), 1, 10, 10),
            ("bob".to_string(), 1, 20, 20),
            ("carol".to_string(), 1, 40, 40)
        ]
    );
    assert_counts_exact(&mut c);
    let folded = smanager::db::files::compact_counts(&mut c).expect("compact");
    assert!(folded > 0, "the deltas fold together");
    assert_counts_exact(&mut c);
    assert_eq!(smanager::db::files::compact_counts(&mut c).expect("compact again"), 0);
}

#[test]
fn orders_and_closes_of_one_cid_keep_chain_order_within_a_run() {
    // Gathered writes must not reorder events of one CID: ordered, closed, ordered again is a live file whose
    // cleanup was cancelled; ordered then closed is closed with its cleanup pending; a close of an unknown CID is
    // recorded closed. Other CIDs' events in between commute.
    let t = TestDb::migrated();
    let mut c = t.conn();
    let close = |cid: &str| ChainEvent::Closed {
        cid: cid.into(),
        reason: CloseReason::Closed,
    };
    let blocks = vec![block_of(
        1,
        vec![
            order(CIDS[0], 100, 1, "alice"),
            order(CIDS[1], 200, 2, "bob"),
            close(CIDS[0]),
            close("QmNeverSeen"),
            order(CIDS[0], 100, 3, "carol"),
            close(CIDS[1]),
            close(CIDS[1]),
        ],
    )];
    let out = smanager::db::files::apply_blocks(&mut c, &blocks).expect("apply");
    assert_eq!((out[0].ordered, out[0].closed), (3, 3), "{out:?}");
    let status = |c: &mut PgConnection, cid: &str| -> (FileStatus, bigdecimal::BigDecimal) {
        files::table
            .find(cid)
            .select((files::status, files::tips))
            .first(c)
            .expect("file")
    };
    assert_eq!(
        status(&mut c, CIDS[0]),
        (FileStatus::New, bigdecimal::BigDecimal::from(4))
    );
    assert_eq!(status(&mut c, CIDS[1]).0, FileStatus::Closed);
    assert_eq!(status(&mut c, "QmNeverSeen").0, FileStatus::Closed);
    let cleanups: Vec<(String, CleanupStatus)> = cleanups::table
        .order(cleanups::cid)
        .select((cleanups::cid, cleanups::status))
        .load(&mut c)
        .expect("cleanups");
    assert_eq!(
        cleanups,
        vec![
            ("QmNeverSeen".to_string(), CleanupStatus::Pending),
            (CIDS[0].to_string(), CleanupStatus::Cancelled),
            (CIDS[1].to_string(), CleanupStatus::Pending),
        ]
    );
    assert_counts_exact(&mut c);
}

#[test]
fn files_ordered_then_closed_in_later_blocks_are_written_once_per_kind() {
    // A catch-up is full of files ordered and closed some blocks later. Those closes follow their orders in chain
    // order, so the run's orders are written together and then its closes: one statement of each kind, not one
    // per block. Each `files` statement leaves its own rows in `file_count_deltas`, which counts them.
    let t = TestDb::migrated();
    let mut c = t.conn();
    let cid = |i: u64| format!("QmOrderedThenClosed{i:027}");
    let blocks: Vec<IndexedBlock> = (1..=40u64)
        .map(|n| {
            let mut events = vec![order(&cid(n), 100, 1, "alice")];
            if n > 1 {
                events.push(ChainEvent::Closed {
                    cid: cid(n - 1),
                    reason: CloseReason::Closed,
                });
            }
            block_of(n, events)
        })
        .collect();
    let deltas = |c: &mut PgConnection| -> i64 {
        diesel::dsl::sql::<diesel::sql_types::BigInt>("SELECT count(*) FROM file_count_deltas")
            .get_result(c)
            .expect("deltas")
    };
    let before = deltas(&mut c);
    let out = smanager::db::files::apply_blocks(&mut c, &blocks).expect("apply");
    assert_eq!(out.iter().map(|o| o.ordered).sum::<usize>(), 40);
    assert_eq!(out.iter().map(|o| o.closed).sum::<usize>(), 39);
    // One insert (new files) and one update (new to closed, two groups): three rows. Writing the run in pieces
    // leaves rows for every piece (22 when each close wrote the orders gathered before it).
    let written = deltas(&mut c) - before;
    assert!(written <= 3, "{written} count rows: the run was written in pieces");
    let closed: i64 = files::table
        .filter(files::status.eq(FileStatus::Closed))
        .count()
        .get_result(&mut c)
        .expect("closed");
    assert_eq!(closed, 39);
    let live: String = files::table
        .filter(files::status.eq(FileStatus::New))
        .select(files::cid)
        .first(&mut c)
        .expect("the last file stays live");
    assert_eq!(live, cid(40));
    let pending: i64 = cleanups::table
        .filter(cleanups::status.eq(CleanupStatus::Pending))
        .count()
        .get_result(&mut c)
        .expect("cleanups");
    assert_eq!(pending, 39);
    assert_counts_exact(&mut c);
}

#[test]
fn a_file_the_scanner_inserts_while_a_catch_up_copies_it_is_upserted_instead() {
    // New files are copied in; the scanner inserting one of them meanwhile must cost nothing: the copy is rolled
    // back to its savepoint and every order of the run is upserted, in the same transaction as the cursor.
    let t = TestDb::migrated();
    let mut scanner = t.conn();
    diesel::sql_query("BEGIN").execute(&mut scanner).expect("begin");
    diesel::sql_query(
        "INSERT INTO files (cid, size_bytes, amount, expired_at, replicas, seen_by_scan, status)
         VALUES ($1, 100, 5, 900000, 3, TRUE, 'new')",
    )
    .bind::<diesel::sql_types::Text, _>(CIDS[0])
    .execute(&mut scanner)
    .expect("scanned row");
    let blocks = vec![block_of(
        1,
        vec![
            order(CIDS[0], 100, 7, "alice"),
            order(CIDS[1], 200, 1, "bob"),
            order(CIDS[0], 100, 2, "carol"),
        ],
    )];
    let catch_up = {
        let mut c = t.conn();
        std::thread::spawn(move || smanager::db::files::apply_blocks(&mut c, &blocks))
    };
    t.wait_for_a_lock_waiter("the catch-up's copy never waited for the scanned row");
    diesel::sql_query("COMMIT").execute(&mut scanner).expect("commit");
    let out = catch_up.join().expect("catch-up thread").expect("the catch-up's write");
    assert_eq!(out[0].ordered, 3);

    let mut c = t.conn();
    let rows: Vec<(String, bool, bool, bigdecimal::BigDecimal, i64)> = files::table
        .select((
            files::cid,
            files::seen_by_event,
            files::seen_by_scan,
            files::tips,
            files::expired_at,
        ))
        .order(files::cid)
        .load(&mut c)
        .expect("files");
    let by_cid: std::collections::HashMap<_, _> = rows.into_iter().map(|r| (r.0.clone(), r)).collect();
    let scanned = &by_cid[CIDS[0]];
    assert!(scanned.1 && scanned.2, "the scanned row gains its orders: {scanned:?}");
    assert_eq!(
        (scanned.3.clone(), scanned.4),
        (bigdecimal::BigDecimal::from(9), 900_000)
    );
    assert_eq!(by_cid[CIDS[1]].3, bigdecimal::BigDecimal::from(1));
    let owners: i64 = file_owners::table.count().get_result(&mut c).expect("owners");
    assert_eq!(owners, 3);
    let cursor = smanager::db::state::cursor(&mut c, smanager::db::state::INDEXER_CURSOR).expect("cursor");
    assert_eq!(cursor.and_then(|c| c.block_number), Some(1));
    assert_counts_exact(&mut c);
}

#[test]
fn copied_orders_keep_128_bit_tips_and_every_owner() {
    let t = TestDb::migrated();
    let mut c = t.conn();
    let blocks = vec![
        block_of(
            1,
            vec![
                order(CIDS[0], 100, u128::MAX, "alice"),
                order(CIDS[0], 100, u128::MAX, "alice"),
                order(CIDS[0], 100, 1, "bob"),
            ],
        ),
        block_of(2, vec![order(CIDS[1], 5, 0, "a\tb\\c\nd")]),
    ];
    smanager::db::files::apply_blocks(&mut c, &blocks).expect("apply");
    let tips: bigdecimal::BigDecimal = files::table
        .find(CIDS[0])
        .select(files::tips)
        .first(&mut c)
        .expect("file");
    let max = bigdecimal::BigDecimal::from(u128::MAX);
    assert_eq!(tips, &max + &max + bigdecimal::BigDecimal::from(1));
    let owners: Vec<(String, String, i32, i64, i64)> = file_owners::table
        .select((
            file_owners::cid,
            file_owners::owner,
            file_owners::orders,
            file_owners::first_block,
            file_owners::last_block,
        ))
        .order((file_owners::cid, file_owners::owner))
        .load(&mut c)
        .expect("owners");
    assert_eq!(
        owners,
        vec![
            (CIDS[0].to_string(), "alice".to_string(), 2, 1, 1),
            (CIDS[0].to_string(), "bob".to_string(), 1, 1, 1),
            (CIDS[1].to_string(), "a\tb\\c\nd".to_string(), 1, 2, 2),
        ]
    );
    let blocks_seen: (Option<i64>, Option<i64>) = files::table
        .find(CIDS[1])
        .select((files::first_seen_block, files::last_order_block))
        .first(&mut c)
        .expect("file");
    assert_eq!(blocks_seen, (Some(2), Some(2)));
    assert_counts_exact(&mut c);
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

/// The plan PostgreSQL keeps for `statement` once a prepared statement goes generic, explained for `args`, as one
/// string.
fn generic_plan(conn: &mut PgConnection, name: &str, types: &str, statement: &str, args: &str) -> String {
    diesel::sql_query("SET plan_cache_mode = force_generic_plan")
        .execute(conn)
        .expect("generic plans");
    diesel::sql_query(format!("PREPARE {name}({types}) AS {statement}"))
        .execute(conn)
        .expect("prepare");
    let lines: Vec<PlanLine> = diesel::sql_query(format!("EXPLAIN EXECUTE {name}({args})"))
        .load(conn)
        .expect("explain");
    lines.into_iter().map(|l| l.line).collect::<Vec<_>>().join("\n")
}

#[test]
fn cancelling_the_cleanups_of_files_ordered_again_reads_only_pending_ones_under_a_generic_plan() {
    let t = TestDb::migrated();
    let mut c = t.conn();
    // A node that has deleted many files: 20,000 finished cleanups, 30 pending.
    diesel::sql_query(
        "INSERT INTO files (cid, size_bytes, status) SELECT 'Qm' || i, 1, 'cleaned' FROM generate_series(1, 20030) i",
    )
    .execute(&mut c)
    .expect("files");
    diesel::sql_query(
        "INSERT INTO cleanups (cid, reason, status)
         SELECT 'Qm' || i, 'closed', CASE WHEN i <= 20000 THEN 'done' ELSE 'pending' END::cleanup_status
           FROM generate_series(1, 20030) i",
    )
    .execute(&mut c)
    .expect("cleanups");
    diesel::sql_query("ANALYZE cleanups").execute(&mut c).expect("analyze");
    let cancel = smanager::db::files::CANCEL_CLEANUPS_ORDERED_AGAIN;
    let plan = generic_plan(&mut c, "cancel", "text[]", cancel, "'{Qm1,Qm20001}'");
    assert!(
        !plan.contains("Seq Scan") && plan.contains("Index"),
        "the pending cleanups are found by index:\n{plan}"
    );
    // The same statement with the status bound, as a query builder sends it, reads every cleanup.
    let bound = cancel.replace("status = 'pending'", "status = $2");
    let plan = generic_plan(
        &mut c,
        "bound",
        "text[], cleanup_status",
        &bound,
        "'{Qm1,Qm20001}', 'pending'",
    );
    assert!(plan.contains("Seq Scan on cleanups"), "{plan}");
}

/// The indexer's transactions commit without waiting for the WAL flush (a commit a crash loses is lost with its
/// cursor and read again from the chain), and only they: a trigger on the cursor records the setting its statements
/// ran with, and the connection's own setting is unchanged afterwards.
#[test]
fn indexer_writes_commit_without_waiting_for_the_wal_flush() {
    #[derive(QueryableByName)]
    struct Mode {
        #[diesel(sql_type = diesel::sql_types::Text)]
        mode: String,
    }
    let t = TestDb::migrated();
    let mut c = t.conn();
    for ddl in [
        "CREATE TABLE seen_commit_mode (mode TEXT NOT NULL)",
        "CREATE FUNCTION note_commit_mode() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN INSERT INTO seen_commit_mode VALUES (current_setting('synchronous_commit')); RETURN NULL; END $$",
        "CREATE TRIGGER note_commit_mode AFTER INSERT OR UPDATE ON chain_cursors
         FOR EACH STATEMENT EXECUTE FUNCTION note_commit_mode()",
    ] {
        diesel::sql_query(ddl).execute(&mut c).expect("trigger");
    }
    let setting = |c: &mut PgConnection| {
        diesel::sql_query("SELECT current_setting('synchronous_commit') AS mode")
            .get_result::<Mode>(c)
            .expect("setting")
            .mode
    };
    let before = setting(&mut c);
    smanager::db::files::apply_blocks(&mut c, &[block_of(1, vec![order(CIDS[0], 100, 1, "alice")])]).expect("apply");
    let seen: Vec<String> = diesel::sql_query("SELECT mode FROM seen_commit_mode")
        .load::<Mode>(&mut c)
        .expect("modes")
        .into_iter()
        .map(|m| m.mode)
        .collect();
    assert!(!seen.is_empty() && seen.iter().all(|m| m == "off"), "{seen:?}");
    assert_eq!(
        setting(&mut c),
        before,
        "the setting outlived the indexer's transaction"
    );
}
