//! Periodic duties on devnet: IPFS `repo/gc` runs on `ipfs.gcIntervalSecs` and never at 0; files left waiting (retry
//! states) for longer than `retry.giveUpDays` since their current pursuit began become `failed`, fresher ones (and
//! ones ordered again recently) keep waiting.

mod common;
#[path = "common/devnode.rs"]
mod devnode;

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;

use common::eventually;
use devnode::Node;
use smanager::db::FileStatus;
use smanager::devnet::chain::{account, ChainConfig, DevChain};
use smanager::devnet::content::ContentStore;

async fn quiet_chain(me: [u8; 32], content: &ContentStore) -> DevChain {
    DevChain::start(ChainConfig::quiet(200, vec![me]), Arc::new(content.clone()))
        .await
        .expect("chain")
}

#[actix_rt::test]
async fn ipfs_gc_runs_on_its_interval_and_not_at_zero() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = quiet_chain(me, &content).await;
    let on = Node::start(&chain.ws_url(), &me, &content, |s| s.ipfs.gc_interval_secs = 1);
    let off = Node::start(&chain.ws_url(), &me, &content, |s| s.ipfs.gc_interval_secs = 0);
    eventually(60, "two repo/gc runs", || {
        let n = on.ipfs.stats().gc_runs;
        async move { (n >= 2).then_some(()) }
    })
    .await;
    // The enabled node has run at least two intervals by now; the disabled one must not have run any.
    assert_eq!(off.ipfs.stats().gc_runs, 0, "repo/gc ran with gcIntervalSecs = 0");
    on.stop().await;
    off.stop().await;
    chain.stop().await;
}

#[actix_rt::test]
async fn files_waiting_past_the_give_up_age_become_failed() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = quiet_chain(me, &content).await;
    let node = Node::start(&chain.ws_url(), &me, &content, |s| s.retry.give_up_days = 30);
    let old = "QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn";
    let fresh = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
    let reordered = "QmNLei78zWmzUdbeRB3CiUfAizWUrbeeZh5K1rhAQKCh51";
    {
        let mut c = node.db.conn();
        // All wait for a replica and are not due for another check. The age counts from `pursued_since`: the
        // re-ordered file was first indexed 60 days ago but ordered again yesterday.
        for (cid, created_days, pursued_days) in [(old, 31, 31), (fresh, 29, 29), (reordered, 60, 1)] {
            diesel::sql_query(format!(
                "INSERT INTO files (cid, size_bytes, status, next_attempt_at, created_at, pursued_since) VALUES \
                 ('{cid}', 1024, 'pending_replica', now() + interval '1 day', \
                  now() - interval '{created_days} days', now() - interval '{pursued_days} days')"
            ))
            .execute(&mut c)
            .expect("insert");
        }
    }
    let reason = eventually(60, "the month-old file given up", || {
        let row = node.status_and_reason(old);
        async move { row.filter(|(s, _)| *s == FileStatus::Failed).map(|(_, r)| r) }
    })
    .await;
    assert!(reason.is_some_and(|r| r.contains("30 days")), "reason names the limit");
    // Several Picker rounds later (tick 1 s), the fresher and the re-ordered file still wait.
    actix_rt::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(node.status(fresh), Some(FileStatus::PendingReplica));
    assert_eq!(node.status(reordered), Some(FileStatus::PendingReplica));
    node.stop().await;
    chain.stop().await;
}
