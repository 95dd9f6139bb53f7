//! No order is lost and no live file is closed or deleted because of how a block was decoded or a map was read:
//! repeat orders in one batch or one block each count, an order whose call cannot be read is taken from storage,
//! bad chain data never downgrades a known file, a new order re-opens any non-final file, the scanner repairs
//! local state from the chain, and Cleanup re-reads the chain before it deletes.

mod common;

use std::sync::Arc;

use diesel::prelude::*;

use common::{eventually, TestDb};
use smanager::chain::client::SubxtChain;
use smanager::chain::{ChainEvent, ChainSource, FileOrder, IndexedBlock, ScannedFile};
use smanager::db::schema::{cleanups, file_owners, files};
use smanager::db::{files as file_q, state, CleanupStatus, FileStatus};
use smanager::devnet::chain::{account, ChainConfig, DevChain};
use smanager::devnet::content::ContentStore;

fn tips_of(t: &TestDb, cid: &str) -> (String, i64, FileStatus) {
    let mut c = t.conn();
    let (tips, size, status): (bigdecimal::BigDecimal, i64, FileStatus) = files::table
        .find(cid)
        .select((files::tips, files::size_bytes, files::status))
        .first(&mut c)
        .expect("file row");
    (tips.to_string(), size, status)
}

fn owner_orders(t: &TestDb, cid: &str) -> Vec<(String, i32)> {
    file_owners::table
        .filter(file_owners::cid.eq(cid))
        .select((file_owners::owner, file_owners::orders))
        .order(file_owners::owner)
        .load(&mut t.conn())
        .expect("owners")
}

#[actix_rt::test]
async fn repeat_orders_and_opaque_calls_are_each_indexed() {
    let content = ContentStore::new();
    let chain = DevChain::start(ChainConfig::quiet(0, vec![account("m0")]), Arc::new(content.clone()))
        .await
        .expect("chain");
    let a = content.build(11, 1000, false, true).cid;
    let b = content.build(12, 500, true, true).cid;
    let c = content.build(13, 700, false, true).cid;
    // Two orders on one CID inside one utility.batch, with different sizes and tips.
    chain.order_batch_now(&[(&a, 1000, 4), (&a, 2000, 9)]);
    // Two identical orders by one account in one block (two extrinsics).
    chain.order_now(&b, 500, 3);
    chain.order_now(&b, 500, 3);
    // An order whose call travels as opaque bytes (as through a multisig).
    chain.order_opaque_now(&c, 700);
    let n = chain.produce_block();

    let client = SubxtChain::connect(&chain.ws_url()).await.expect("connect");
    let block = client.block(u64::from(n)).await.expect("block decodes");
    let orders: Vec<&FileOrder> = block
        .events
        .iter()
        .filter_map(|e| match e {
            ChainEvent::Ordered(o) => Some(o),
            _ => None,
        })
        .collect();
    let of = |cid: &str| -> Vec<(u64, u128)> {
        orders
            .iter()
            .filter(|o| o.cid == cid)
            .map(|o| (o.size, o.tips))
            .collect()
    };
    assert_eq!(of(&a), vec![(1000, 4), (2000, 9)], "batch orders: {:?}", block.events);
    assert_eq!(
        of(&b),
        vec![(500, 3), (500, 3)],
        "same-block orders: {:?}",
        block.events
    );
    assert_eq!(
        of(&c),
        vec![(700, 0)],
        "opaque order taken from storage: {:?}",
        block.events
    );
    assert!(
        !block.events.iter().any(|e| matches!(e, ChainEvent::Invalid { .. })),
        "{:?}",
        block.events
    );

    let t = TestDb::migrated();
    {
        let mut conn = t.conn();
        state::set_block_cursor(&mut conn, state::INDEXER_CURSOR, i64::from(n) - 1, "0x0").expect("cursor");
        file_q::apply_block(&mut conn, &block).expect("apply");
    }
    assert_eq!(tips_of(&t, &a).0, "13");
    assert_eq!(tips_of(&t, &b).0, "6");
    assert_eq!(tips_of(&t, &c).1, 700);
    let alice = smanager::chain::ss58::encode(smanager::chain::ss58::CRUST_PREFIX, &account("alice"));
    assert_eq!(owner_orders(&t, &a), vec![(alice.clone(), 2)]);
    assert_eq!(owner_orders(&t, &b), vec![(alice, 2)]);
    chain.stop().await;
}

fn block(number: u64, events: Vec<ChainEvent>) -> IndexedBlock {
    IndexedBlock {
        number,
        hash: format!("0x{number:064x}"),
        timestamp_ms: None,
        events,
    }
}

fn order(cid: &str, tips: u128) -> ChainEvent {
    ChainEvent::Ordered(FileOrder {
        cid: cid.into(),
        size: 1000,
        tips,
        owner: "cTL1".into(),
    })
}

const CIDS: [&str; 5] = [
    "QmY3yV46Kj4kySVUky35jhZFCwsebHm9GD9oVD4UzrqmsV",
    "QmaozNR7DZHQK1ZcU9p7QdrshMvXqWK6gpu5rmrkPdT3L4",
    "QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB",
    "QmQPeNsJPyVWPFDVHb9VsD6iyHFpTbpnM3hSwq1W5WGAUc",
    "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n",
];

#[test]
fn bad_data_never_downgrades_and_new_orders_reopen() {
    let t = TestDb::migrated();
    let mut c = t.conn();
    state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 0, "0x0").expect("cursor");
    file_q::apply_block(&mut c, &block(1, CIDS.iter().map(|cid| order(cid, 1)).collect())).expect("apply 1");
    let set = |c: &mut PgConnection, cid: &str, s: FileStatus| {
        diesel::update(files::table.find(cid))
            .set((files::status.eq(s), files::attempts.eq(3)))
            .execute(c)
            .expect("set status");
    };
    set(&mut c, CIDS[0], FileStatus::Pinning);
    set(&mut c, CIDS[1], FileStatus::Failed);
    set(&mut c, CIDS[2], FileStatus::Skipped);
    set(&mut c, CIDS[3], FileStatus::Invalid);
    set(&mut c, CIDS[4], FileStatus::Sealed);
    // Seen by the scanner before its order's event: waiting for a replica, which a fresh order must not wait for.
    let scanned_first = cid::Cid::try_from(CIDS[0])
        .expect("cid")
        .into_v1()
        .expect("v1")
        .to_string();
    file_q::apply_block(&mut c, &block(2, vec![])).expect("apply 2 (empty)");
    file_q::upsert_scanned(
        &mut c,
        &[ScannedFile {
            cid: scanned_first.clone(),
            size: 1000,
            expired_at: 0,
            amount: 1,
            replicas: 0,
        }],
        &[],
        Some("0x00"),
        0,
    )
    .expect("scan");
    set(&mut c, &scanned_first, FileStatus::PendingReplica);
    // A bad event naming a known file must not turn it invalid.
    file_q::apply_block(
        &mut c,
        &block(
            3,
            vec![ChainEvent::Invalid {
                raw: CIDS[0].into(),
                reason: "FileSuccess without a matching call".into(),
            }],
        ),
    )
    .expect("apply 3");
    assert_eq!(tips_of(&t, CIDS[0]).2, FileStatus::Pinning);
    // A new order re-opens failed, skipped and invalid files with attempts reset; live ones stay as they are.
    let mut again: Vec<ChainEvent> = CIDS.iter().map(|cid| order(cid, 1)).collect();
    again.push(order(&scanned_first, 1));
    file_q::apply_block(&mut c, &block(4, again)).expect("apply 4");
    let status = |cid: &str| -> (FileStatus, i32) {
        files::table
            .find(cid)
            .select((files::status, files::attempts))
            .first(&mut t.conn())
            .expect("row")
    };
    assert_eq!(status(CIDS[0]), (FileStatus::Pinning, 3));
    assert_eq!(status(CIDS[1]), (FileStatus::New, 0));
    assert_eq!(status(CIDS[2]), (FileStatus::New, 0));
    assert_eq!(status(CIDS[3]), (FileStatus::New, 0));
    assert_eq!(status(CIDS[4]), (FileStatus::Sealed, 3));
    assert_eq!(status(&scanned_first), (FileStatus::New, 0));
}

#[test]
fn scan_repairs_closed_files_alive_on_chain_and_takes_corrected_sizes() {
    let t = TestDb::migrated();
    let mut c = t.conn();
    state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 0, "0x0").expect("cursor");
    file_q::apply_block(
        &mut c,
        &block(1, vec![order(CIDS[0], 1), order(CIDS[1], 1), order(CIDS[2], 1)]),
    )
    .expect("apply");
    // Blocks 2 to 499 carried nothing for these files.
    state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 499, "0x01f3").expect("cursor");
    // Closed here (a misread close) for CIDS[0] and CIDS[2]; CIDS[2] really expired on chain.
    file_q::apply_block(
        &mut c,
        &block(
            500,
            vec![
                ChainEvent::Closed {
                    cid: CIDS[0].into(),
                    reason: smanager::chain::CloseReason::Closed,
                },
                ChainEvent::Closed {
                    cid: CIDS[2].into(),
                    reason: smanager::chain::CloseReason::Closed,
                },
            ],
        ),
    )
    .expect("close");
    let row = |cid: &str, size: u64, expired_at: u32| ScannedFile {
        cid: cid.into(),
        size,
        expired_at,
        amount: 10,
        replicas: 1,
    };
    file_q::upsert_scanned(
        &mut c,
        &[row(CIDS[0], 1000, 0), row(CIDS[1], 256, 9_000), row(CIDS[2], 1000, 400)],
        &[],
        Some("0x00"),
        0,
    )
    .expect("scan");
    let (_, _, s0) = tips_of(&t, CIDS[0]);
    assert_eq!(s0, FileStatus::New, "closed here but alive on chain: re-opened");
    assert_eq!(tips_of(&t, CIDS[1]).1, 256, "size corrected on chain (update_replicas)");
    assert_eq!(
        tips_of(&t, CIDS[2]).2,
        FileStatus::Closed,
        "expired on chain: stays closed"
    );
    let pending: Vec<String> = cleanups::table
        .filter(cleanups::status.eq(CleanupStatus::Pending))
        .select(cleanups::cid)
        .load(&mut c)
        .expect("cleanups");
    assert_eq!(
        pending,
        vec![CIDS[2].to_string()],
        "the re-opened file's deletion is cancelled"
    );
}

#[actix_rt::test]
async fn cleanup_rereads_the_chain_before_deleting() {
    let content = ContentStore::new();
    let chain = DevChain::start(ChainConfig::quiet(0, vec![account("m0")]), Arc::new(content.clone()))
        .await
        .expect("chain");
    let live = content.build(21, 1000, false, true).cid;
    let gone = content.build(22, 1000, false, true).cid;
    chain.order_now(&live, 1000, 1);
    chain.order_now(&gone, 1000, 1);
    chain.produce_block();
    chain.close_now(&gone, false);
    let head = chain.produce_block();

    let t = TestDb::migrated();
    {
        // The local database believes both closed (as after a misread close), with deletions queued.
        let mut c = t.conn();
        state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 0, "0x0").expect("cursor");
        file_q::apply_block(&mut c, &block(1, vec![order(&live, 1), order(&gone, 1)])).expect("orders");
        let closes = [&live, &gone]
            .iter()
            .map(|cid| ChainEvent::Closed {
                cid: cid.to_string(),
                reason: smanager::chain::CloseReason::Closed,
            })
            .collect();
        file_q::apply_block(&mut c, &block(2, closes)).expect("closes");
        state::set_block_cursor(&mut c, state::INDEXER_CURSOR, i64::from(head), "0x0").expect("cursor");
    }
    let sworker = smanager::devnet::sworker::SworkerSim::start(
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        smanager::devnet::sworker::SworkerConfig::default(),
    )
    .expect("sworker");
    let mut s = t.app_settings();
    s.chain.end_point = chain.ws_url();
    s.chain.scan_cooldown_secs = 3600;
    s.sworker.end_point = sworker.url();
    let peers = common::start_with_sworker(t.db(), s, "test/cleanup-recheck", &sworker.url());
    let job_status = |cid: String| {
        let t = &t;
        async move {
            let s: Option<CleanupStatus> = cleanups::table
                .filter(cleanups::cid.eq(&cid))
                .order(cleanups::id.desc())
                .select(cleanups::status)
                .first(&mut t.conn())
                .ok();
            s.filter(|s| *s != CleanupStatus::Pending)
        }
    };
    assert_eq!(
        eventually(60, "live file's cleanup decided", || job_status(live.clone())).await,
        CleanupStatus::Cancelled
    );
    assert_eq!(
        eventually(60, "closed file's cleanup decided", || job_status(gone.clone())).await,
        CleanupStatus::Done
    );
    let (status, reason): (FileStatus, Option<String>) = files::table
        .find(&live)
        .select((files::status, files::status_reason))
        .first(&mut t.conn())
        .expect("row");
    assert_ne!(status, FileStatus::Cleaned, "a file alive on chain was deleted");
    assert!(reason.is_some_and(|r| r.contains("alive on chain")) || status != FileStatus::Closed);
    smanager::app::shutdown(&peers).await;
    sworker.stop().await;
    chain.stop().await;
}

/// `RenewFileSuccess` refreshes the file's chain facts from its storage entry at that block: a renewed file carries
/// its new expiry and amount, not the ones it had when it was first seen.
#[actix_rt::test]
async fn a_renewal_refreshes_the_files_chain_facts() {
    let content = ContentStore::new();
    let chain = DevChain::start(ChainConfig::quiet(0, vec![account("m0")]), Arc::new(content.clone()))
        .await
        .expect("chain");
    let cid = content.build(31, 1000, false, true).cid;
    chain.order_now(&cid, 1000, 1);
    let ordered = chain.produce_block();
    let before = chain.file_info(&cid).expect("stored");
    chain.renew_now(&cid, 100_000);
    let renewed = chain.produce_block();
    let after = chain.file_info(&cid).expect("still stored");
    assert!(after.expired_at > before.expired_at && after.amount > before.amount);

    let client = SubxtChain::connect(&chain.ws_url()).await.expect("connect");
    let b1 = client.block(u64::from(ordered)).await.expect("order block");
    let b2 = client.block(u64::from(renewed)).await.expect("renewal block");
    let refreshed: Vec<&ScannedFile> = b2
        .events
        .iter()
        .filter_map(|e| match e {
            ChainEvent::Refreshed(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(refreshed.len(), 1, "{:?}", b2.events);
    assert_eq!(
        (
            refreshed[0].cid.as_str(),
            refreshed[0].size,
            refreshed[0].expired_at,
            refreshed[0].amount
        ),
        (cid.as_str(), 1000, after.expired_at, after.amount)
    );

    let t = TestDb::migrated();
    let mut c = t.conn();
    state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 0, "0x0").expect("cursor");
    file_q::apply_block(&mut c, &b1).expect("order");
    let outcome = file_q::apply_block(&mut c, &b2).expect("renewal");
    assert_eq!(outcome.refreshed, 1);
    let (expired_at, amount): (i64, bigdecimal::BigDecimal) = files::table
        .find(&cid)
        .select((files::expired_at, files::amount))
        .first(&mut c)
        .expect("row");
    assert_eq!(expired_at, i64::from(after.expired_at));
    assert_eq!(amount, bigdecimal::BigDecimal::from(after.amount));
    chain.stop().await;
}

/// The indexer reads blocks by layout ([`smanager::chain::layout`]) and falls back to subxt: on a busy devnet
/// history (scenario orders and closes, batches, repeat and opaque orders, renewals, illegal closes, a bad
/// MerkleRoot) both readers must give every block the same events, and a block neither can decode is an error from
/// both, not something the layout reader gets past.
#[actix_rt::test]
async fn the_layout_reader_reads_every_block_as_subxt_does() {
    use smanager::chain::client::Reader;
    use smanager::devnet::chain::ScenarioConfig;
    let content = ContentStore::new();
    let chain = DevChain::start(
        ChainConfig {
            scenario: ScenarioConfig {
                seed: 9,
                order_rate: 4.0,
                close_after_blocks: 3,
                close_share: 0.5,
                ..Default::default()
            },
            ..ChainConfig::quiet(0, vec![account("m0")])
        },
        Arc::new(content.clone()),
    )
    .await
    .expect("chain");
    let a = content.build(41, 1000, false, true).cid;
    let b = content.build(42, 500, true, true).cid;
    let c = content.build(43, 700, false, true).cid;
    for round in 0..12u32 {
        match round % 4 {
            0 => chain.order_batch_now(&[(&a, 1000, 4), (&b, 500, 2), (&a, 2000, 9)]),
            1 => {
                chain.order_now(&b, 500, 3);
                chain.order_now(&b, 500, 3);
                chain.order_opaque_now(&c, 700);
            }
            2 => {
                chain.renew_now(&a, 1000);
                chain.close_now(&c, true);
                chain.order_raw(vec![0xff, 0xfe, 0x00], 10);
            }
            _ => chain.close_now(&b, false),
        }
        chain.produce_block();
    }
    for _ in 0..8 {
        chain.produce_block();
    }
    let head = u64::from(chain.produce_block());

    let client = SubxtChain::connect(&chain.ws_url()).await.expect("connect");
    let mut seen = [0usize; 5];
    let fallbacks = smanager::metrics::METRICS.blocks_read_by_subxt_total.get();
    for n in 1..=head {
        let by_layout = common::read_by_both(&client, n).await;
        assert_eq!(
            client.block(n).await.expect("block"),
            by_layout,
            "block {n}: the indexer's reader"
        );
        for e in &by_layout.events {
            let kind = match e {
                ChainEvent::Ordered(_) => 0,
                ChainEvent::Closed {
                    reason: smanager::chain::CloseReason::Closed,
                    ..
                } => 1,
                ChainEvent::Closed { .. } => 2,
                ChainEvent::Refreshed(_) => 3,
                ChainEvent::Invalid { .. } => 4,
            };
            seen[kind] += 1;
        }
    }
    assert_eq!(
        smanager::metrics::METRICS.blocks_read_by_subxt_total.get(),
        fallbacks,
        "the indexer's reader took every block by layout"
    );
    assert!(
        seen.iter().all(|n| *n > 0),
        "orders, closes, illegal closes, refreshes and bad data all compared: {seen:?}"
    );

    // A block with an extrinsic nothing can decode: the layout reader refuses it, and the indexer's reader reports
    // subxt's decode error.
    chain.inject_garbage();
    let bad = u64::from(chain.produce_block());
    assert!(client.read_block(bad, Reader::Layout).await.is_err());
    let fallbacks = smanager::metrics::METRICS.blocks_read_by_subxt_total.get();
    match client.block(bad).await {
        Err(smanager::chain::ChainError::Decode { number, .. }) => assert_eq!(number, bad),
        other => panic!("a garbage block must be a decode error: {other:?}"),
    }
    assert_eq!(
        smanager::metrics::METRICS.blocks_read_by_subxt_total.get(),
        fallbacks + 1,
        "the block subxt had to read is counted"
    );
}
