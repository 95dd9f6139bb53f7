//! Bad chain data never crashes the indexer and is never skipped silently: MerkleRoots that are not UTF-8, not a
//! CID or oversized are stored as `invalid` files with the block number; a block that cannot be decoded is recorded
//! and passed; orders after them are indexed normally.

mod common;

use std::sync::Arc;

use diesel::prelude::*;

use common::{eventually, TestDb};
use smanager::db::schema::files;
use smanager::db::{state, FileStatus};
use smanager::devnet::chain::{account, ChainConfig, DevChain};
use smanager::devnet::content::ContentStore;

#[actix_rt::test]
async fn bad_merkle_roots_and_undecodable_blocks() {
    let content = ContentStore::new();
    let chain = DevChain::start(ChainConfig::quiet(0, vec![account("m0")]), Arc::new(content.clone()))
        .await
        .expect("chain");
    chain.order_raw(vec![0xff, 0xfe, 0x00, 0x80], 10);
    chain.order_raw(b"hello-this-is-not-a-cid".to_vec(), 10);
    chain.order_raw(vec![b'Q'; 10_000], 10);
    chain.produce_block(); // 1: bad MerkleRoots
    chain.inject_garbage();
    let garbage_block = chain.produce_block(); // 2: undecodable
    let good = content.build(77, 1000, false, true).cid;
    chain.order_now(&good, 1000, 5);
    let last = chain.produce_block(); // 3: a normal order

    if std::env::var("DEBUG_BAD_INPUT").is_ok() {
        use smanager::chain::ChainSource;
        let c = smanager::chain::client::SubxtChain::connect(&chain.ws_url())
            .await
            .expect("connect");
        for n in 1..=3 {
            eprintln!("block {n}: {:?}", c.block(n).await);
        }
    }
    let t = TestDb::migrated();
    {
        let mut c = t.conn();
        state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 0, "0x0").expect("cursor");
    }
    let mut settings = t.app_settings();
    settings.chain.end_point = chain.ws_url();
    settings.chain.scan_cooldown_secs = 3600;
    let peers = common::start_indexing(&t, settings, "test/bad-input");
    eventually(120, "indexed past the bad blocks", || {
        let mut c = t.conn();
        let b = state::cursor(&mut c, state::INDEXER_CURSOR)
            .ok()
            .flatten()
            .and_then(|c| c.block_number);
        async move { (b >= Some(i64::from(last))).then_some(()) }
    })
    .await;
    let mut c = t.conn();
    let invalid: Vec<(String, Option<String>)> = files::table
        .filter(files::status.eq(FileStatus::Invalid))
        .select((files::cid, files::status_reason))
        .load(&mut c)
        .expect("invalid rows");
    assert_eq!(invalid.len(), 3, "{invalid:?}");
    assert!(
        invalid
            .iter()
            .all(|(_, r)| r.as_deref().is_some_and(|r| r.starts_with("block 1:"))),
        "{invalid:?}"
    );
    assert!(invalid
        .iter()
        .any(|(_, r)| r.as_deref().is_some_and(|r| r.contains("not UTF-8"))));
    assert!(invalid
        .iter()
        .any(|(_, r)| r.as_deref().is_some_and(|r| r.contains("not a CID"))));
    assert!(invalid
        .iter()
        .any(|(_, r)| r.as_deref().is_some_and(|r| r.contains("too long"))));
    let recorded: Vec<serde_json::Value> = state::kv_get(&mut c, state::KV_UNDECODABLE_BLOCKS)
        .expect("kv")
        .unwrap_or_default();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    assert_eq!(recorded[0]["number"], i64::from(garbage_block));
    let status: FileStatus = files::table
        .find(&good)
        .select(files::status)
        .first(&mut c)
        .expect("good order");
    assert_ne!(status, FileStatus::Invalid);
    // The undecodable block is an alarm until a FilesV2 scan that began after it has finished (the scanner starts
    // one at once, though its cooldown here is an hour).
    let recorded_at: chrono::DateTime<chrono::Utc> = recorded[0]["at"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
        .expect("recorded time");
    eventually(120, "a FilesV2 scan recovered the undecodable block", || {
        let alarms = smanager::db::stats::snapshot(&mut t.conn())
            .map(|s| s.alarms.len())
            .ok();
        let scanned: Option<chrono::DateTime<chrono::Utc>> =
            state::kv_get(&mut t.conn(), state::KV_LAST_FULL_SCAN_STARTED)
                .ok()
                .flatten();
        async move { (alarms == Some(0) && scanned.is_some_and(|s| s >= recorded_at)).then_some(()) }
    })
    .await;
    smanager::app::shutdown(&peers).await;
    chain.stop().await;
}
