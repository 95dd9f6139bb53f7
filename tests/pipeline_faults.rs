//! The pipeline end to end on devnet, over real sockets and PostgreSQL: a group of three members splits the work so
//! every CID is pulled by exactly one; the sWorker going away fails nothing for good; a stalled IPFS pin is
//! cancelled and retried; a seal whose `sealed_size` stops growing is ended and its pin aborted; a full disk parks files as `insufficient_space` until space returns.

mod common;
#[path = "common/devnode.rs"]
mod devnode;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;

use common::eventually;
use devnode::Node;
use smanager::db::schema::files;
use smanager::db::FileStatus;
use smanager::devnet::chain::{account, ChainConfig, DevChain, ScenarioConfig};
use smanager::devnet::content::ContentStore;
use smanager::devnet::sworker::Fault;

async fn chain(members: Vec<[u8; 32]>, content: &ContentStore, order_rate: f64, block_ms: u64) -> DevChain {
    DevChain::start(
        ChainConfig {
            scenario: ScenarioConfig {
                seed: 11,
                order_rate,
                close_share: 0.0,
                unavailable_share: 0.0,
                max_size: 400_000,
                ..Default::default()
            },
            ..ChainConfig::quiet(block_ms, members)
        },
        Arc::new(content.clone()),
    )
    .await
    .expect("chain")
}

#[actix_rt::test]
async fn a_group_of_three_pulls_every_cid_exactly_once() {
    group_pulls_every_cid_exactly_once(3).await;
}

/// Seven members: 256 is not 1 modulo 7, so TypeScript's slot number (with its multibase `f` digit) and the bare
/// CID bytes put CIDs in different slots; every member computes the same one and each CID is taken once.
#[actix_rt::test]
async fn a_group_of_seven_pulls_every_cid_exactly_once() {
    group_pulls_every_cid_exactly_once(7).await;
}

async fn group_pulls_every_cid_exactly_once(size: usize) {
    let content = ContentStore::new();
    let members: Vec<[u8; 32]> = (0..size).map(|i| account(&format!("member-{i}"))).collect();
    let chain = chain(members.clone(), &content, 3.0, 150).await;
    let nodes: Vec<Node> = members
        .iter()
        .map(|m| Node::start(&chain.ws_url(), m, &content, |_| {}))
        .collect();
    // A fresh node follows from the finalized head it finds at start; orders of earlier blocks reach it only through
    // the FilesV2 scan, unreplicated, so they wait for a replica (as in TypeScript) and nobody takes them here. The
    // split is judged on orders from the block at which every member was following.
    eventually(60, "every member following the chain", || {
        let all = nodes.iter().all(|n| n.indexed_block().is_some());
        async move { all.then_some(()) }
    })
    .await;
    let following_from = chain.finalized_number();
    eventually(60, "40 orders placed while everyone follows", || {
        let n = chain
            .ground_truth()
            .orders
            .iter()
            .filter(|o| o.block >= following_from)
            .count();
        async move { (n >= 40).then_some(()) }
    })
    .await;
    chain.pause();
    // Orders of the last blocks before the pause may be visible to the scanner but never replicated and, on a
    // chain that no longer advances, never followed by anything: the group's split is judged on the older ones.
    let paused_at = chain.finalized_number();
    let cids: HashSet<String> = chain
        .ground_truth()
        .orders
        .iter()
        .filter(|o| o.block >= following_from && o.block + 3 <= paused_at)
        .map(|o| o.cid.clone())
        .collect();
    assert!(cids.len() >= 20, "only {} orders before the last blocks", cids.len());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let missing: Vec<&String> = cids
            .iter()
            .filter(|c| !nodes.iter().any(|n| n.sworker.valid_cids().contains(*c)))
            .collect();
        if missing.is_empty() {
            break;
        }
        if std::time::Instant::now() > deadline {
            let truth = chain.ground_truth();
            let detail: Vec<String> = missing
                .iter()
                .map(|c| {
                    let order = truth.orders.iter().find(|o| &o.cid == *c);
                    format!(
                        "{c} (ordered {:?}): {:?}",
                        order.map(|o| (o.block, o.in_batch, o.available)),
                        nodes.iter().map(|n| n.provenance(c)).collect::<Vec<_>>()
                    )
                })
                .collect();
            let cursors: Vec<Option<i64>> = nodes.iter().map(|n| n.indexed_block()).collect();
            panic!(
                "{} of {} CIDs sealed by no member after 120 s (chain paused at {paused_at}, members indexed up to {cursors:?}):\n{}",
                missing.len(),
                cids.len(),
                detail.join("\n")
            );
        }
        actix_rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    for cid in &cids {
        let holders = nodes.iter().filter(|n| n.sworker.valid_cids().contains(cid)).count();
        assert_eq!(holders, 1, "{cid} is held by {holders} members");
    }
    for n in &nodes {
        assert!(!n.sworker.valid_cids().is_empty(), "each member stores its share");
        assert_eq!(n.ipfs.stats().max_concurrent_same_cid, 1);
    }
    for n in nodes {
        n.stop().await;
    }
    chain.stop().await;
}

#[actix_rt::test]
async fn sworker_down_fails_nothing_for_good_and_work_resumes() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = chain(vec![me], &content, 2.0, 200).await;
    let node = Node::start(&chain.ws_url(), &me, &content, |_| {});
    // Slow transfers keep pins in flight when the sWorker goes away (their pending seals outlive the outage).
    node.ipfs.set_transfer_rate(300_000);
    eventually(60, "some files sealed", || {
        let n = node.sworker.valid_cids().len();
        async move { (n >= 3).then_some(()) }
    })
    .await;
    eventually(30, "a pin in flight", || {
        let n = node.sworker.pending_cids().len();
        async move { (n > 0).then_some(()) }
    })
    .await;
    node.sworker.set_fault(Fault::Down).await.expect("down");
    actix_rt::time::sleep(Duration::from_secs(4)).await;
    node.sworker.set_fault(Fault::None).await.expect("up");
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    chain.pause();
    let cids: HashSet<String> = chain.ground_truth().orders.iter().map(|o| o.cid.clone()).collect();
    eventually(120, "every order sealed after the outage", || {
        let n = node.sworker.valid_cids().intersection(&cids).count();
        let want = cids.len();
        async move { (n == want).then_some(()) }
    })
    .await;
    let failed: i64 = files::table
        .filter(files::status.eq(FileStatus::Failed))
        .count()
        .get_result(&mut node.db.conn())
        .expect("count");
    assert_eq!(failed, 0);
    node.stop().await;
    chain.stop().await;
}

#[actix_rt::test]
async fn stalled_pin_is_cancelled_then_retried_with_backoff() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = chain(vec![me], &content, 0.0, 200).await;
    let node = Node::start(&chain.ws_url(), &me, &content, |_| {});
    let stuck = content.build(4242, 300_000, false, false).cid;
    chain.order_now(&stuck, 300_000, 1);
    eventually(60, "the stalled pin was cancelled", || {
        let row = node.status_and_error(&stuck);
        async move {
            row.filter(|(s, e)| *s == FileStatus::PinError && e.as_deref().is_some_and(|e| e.contains("stalled")))
                .map(|_| ())
        }
    })
    .await;
    assert!(
        !node.sworker.pending_cids().contains(&stuck),
        "the partial seal was discarded"
    );
    // IPFS notices the dropped request on its next write; only then is the stalled pin really over (else it could
    // still finish once the content appears, and the Picker would rightly find the file already sealed).
    eventually(30, "IPFS cancelled the stalled pin", || {
        let n = node.ipfs.stats().pins_cancelled;
        async move { (n >= 1).then_some(()) }
    })
    .await;
    content.set_available(&stuck, true);
    eventually(60, "sealed on a later attempt", || {
        let s = node.status(&stuck);
        async move { (s == Some(FileStatus::Sealed)).then_some(()) }
    })
    .await;
    let attempts: i32 = files::table
        .find(&stuck)
        .select(files::attempts)
        .first(&mut node.db.conn())
        .expect("row");
    assert!(attempts >= 2, "{attempts} attempts");
    node.stop().await;
    chain.stop().await;
}

#[actix_rt::test]
async fn full_disk_parks_files_until_space_returns() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = chain(vec![me], &content, 0.0, 200).await;
    let node = Node::start(&chain.ws_url(), &me, &content, |_| {});
    node.sworker.set_capacity(0, 0);
    let f = content.build(77, 200_000, false, true).cid;
    chain.order_now(&f, 200_000, 1);
    eventually(60, "insufficient_space", || {
        let s = node.status(&f);
        async move { (s == Some(FileStatus::InsufficientSpace)).then_some(()) }
    })
    .await;
    // While full, the file is rechecked with a growing delay (retry 1 s → 4 s here) and never probed with
    // file/info: a full node must not ask the sWorker about every candidate every round.
    actix_rt::time::sleep(Duration::from_secs(6)).await;
    let waits: i32 = files::table
        .find(&f)
        .select(files::space_waits)
        .first(&mut node.db.conn())
        .expect("row");
    assert!(
        (2..=5).contains(&waits),
        "{waits} space waits in 6 s with delays 1, 2, 4 s"
    );
    assert_eq!(
        node.sworker.stats().file_infos,
        0,
        "no file/info for a file without space"
    );
    node.sworker.set_capacity(1 << 40, 4096);
    eventually(60, "sealed once space returned", || {
        let s = node.status(&f);
        async move { (s == Some(FileStatus::Sealed)).then_some(()) }
    })
    .await;
    node.stop().await;
    chain.stop().await;
}

#[actix_rt::test]
async fn stalled_seal_is_ended_and_its_pin_aborted_then_retried() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = chain(vec![me], &content, 0.0, 200).await;
    // IPFS keeps the pin alive with progress lines, so only the Sealer's sealed_size check can notice the stall.
    let node = Node::start(&chain.ws_url(), &me, &content, |s| {
        s.puller.stall_timeout_secs = 600;
        s.puller.base_timeout_secs = 600;
        s.sealer.stall_checks = 3;
    });
    node.ipfs.set_transfer_rate(1);
    let f = content.build(5150, 300_000, false, true).cid;
    chain.order_now(&f, 300_000, 1);
    eventually(60, "the stalled seal was cancelled", || {
        let row = node.status_and_error(&f);
        async move {
            row.filter(|(s, e)| *s == FileStatus::PinError && e.as_deref().is_some_and(|e| e.contains("seal stalled")))
                .map(|_| ())
        }
    })
    .await;
    eventually(30, "the partial seal was ended and the pin aborted", || {
        let pending = node.sworker.pending_cids().contains(&f);
        let cancelled = node.ipfs.stats().pins_cancelled;
        async move { (!pending && cancelled >= 1).then_some(()) }
    })
    .await;
    node.ipfs.set_transfer_rate(64 * 1024 * 1024);
    eventually(60, "sealed on a later attempt", || {
        let s = node.status(&f);
        async move { (s == Some(FileStatus::Sealed)).then_some(()) }
    })
    .await;
    assert_eq!(
        node.ipfs.stats().max_concurrent_same_cid,
        1,
        "the aborted pin ended before the retry"
    );
    node.stop().await;
    chain.stop().await;
}

/// `pin/add` returned but the sWorker never kept the file (it restarted right after acknowledging `seal_end`): the
/// file is not recorded as sealed; after `sealer.confirmTimeoutSecs` the attempt fails, the pin is removed from IPFS
/// (Crust's pinner would otherwise answer the retry at once without sealing) and the retry seals it for real.
#[actix_rt::test]
async fn a_pin_the_sworker_does_not_confirm_is_retried_not_sealed() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = chain(vec![me], &content, 0.0, 150).await;
    let node = Node::start(&chain.ws_url(), &me, &content, |s| {
        s.sealer.confirm_timeout_secs = 3;
    });
    let cid = content.build(41, 200_000, false, true).cid;
    node.sworker.forget_next_seal(&cid);
    chain.order_now(&cid, 200_000, 1);
    eventually(90, "sealed after a retry", || {
        let s = node.status(&cid);
        async move { (s == Some(FileStatus::Sealed)).then_some(()) }
    })
    .await;
    assert!(node.sworker.valid_cids().contains(&cid), "the sWorker holds it now");
    let detail = smanager::db::files::detail(&mut node.db.conn(), &cid)
        .expect("detail")
        .expect("row");
    assert_eq!(detail.pins.len(), 2, "{:?}", detail.pins);
    let first = detail.pins.iter().min_by_key(|p| p.id).expect("first pin");
    assert_eq!(first.status, smanager::db::PinStatus::Failed);
    assert!(
        first.error.as_deref().is_some_and(|e| e.contains("does not know")),
        "{:?}",
        first.error
    );
    assert_eq!(detail.file.attempts, 2);
    node.stop().await;
    chain.stop().await;
}

/// Out of space in the middle of a seal (sWorker 8016 after `pin/add` began streaming): go-ipfs-cmds puts that error
/// in the `X-Stream-Error` trailer, which awc drops. The Puller asks the sWorker instead, and the file waits for
/// space as `insufficient_space` without spending an attempt, then seals when space returns.
#[actix_rt::test]
async fn out_of_space_mid_stream_waits_for_space_and_spends_no_attempt() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = chain(vec![me], &content, 0.0, 200).await;
    let node = Node::start(&chain.ws_url(), &me, &content, |s| {
        s.puller.stall_timeout_secs = 60;
    });
    node.ipfs.set_transfer_rate(100_000);
    let f = content.build(88, 400_000, false, true).cid;
    chain.order_now(&f, 400_000, 1);
    eventually(60, "pin streaming", || {
        let s = node.status(&f);
        let streaming = node.ipfs.stats().in_flight > 0;
        async move { (s == Some(FileStatus::Pinning) && streaming).then_some(()) }
    })
    .await;
    actix_rt::time::sleep(Duration::from_millis(1200)).await;
    node.sworker.set_capacity(0, 0);
    let (status, error) = eventually(60, "waiting for space", || {
        let row = node.status_and_error(&f);
        async move { row.filter(|(s, _)| *s != FileStatus::Pinning && *s != FileStatus::Queued) }
    })
    .await;
    assert_eq!(status, FileStatus::InsufficientSpace, "{error:?}");
    assert!(
        error.as_deref().is_some_and(|e| e.contains("X-Stream-Error")),
        "{error:?}"
    );
    let attempts: i32 = files::table
        .find(&f)
        .select(files::attempts)
        .first(&mut node.db.conn())
        .expect("row");
    assert_eq!(attempts, 0, "running out of space is not the file's fault");
    node.ipfs.set_transfer_rate(64 << 20);
    node.sworker.set_capacity(1 << 40, 4096);
    eventually(60, "sealed once space returned", || {
        let s = node.status(&f);
        async move { (s == Some(FileStatus::Sealed)).then_some(()) }
    })
    .await;
    node.stop().await;
    chain.stop().await;
}

/// The real-size check: a DAG larger than its order (beyond `scheduler.sizeMarginPercent`) is skipped before any
/// pull, with the sizes in the reason; a DAG whose size cannot be read in time is pulled as usual.
#[actix_rt::test]
async fn a_dag_larger_than_its_order_is_skipped_and_an_unreadable_size_does_not_block() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = chain(vec![me], &content, 0.0, 200).await;
    let node = Node::start(&chain.ws_url(), &me, &content, |s| {
        s.scheduler.size_check_timeout_secs = 1;
        s.puller.stall_timeout_secs = 600;
    });
    let big = content.build(61, 300_000, false, true).cid;
    let honest = content.build(62, 300_000, false, true).cid;
    let unreachable = content.build(63, 300_000, false, false).cid;
    chain.order_now(&big, 100_000, 1);
    chain.order_now(&honest, 300_000, 1);
    chain.order_now(&unreachable, 300_000, 1);
    let (status, reason) = eventually(60, "oversized DAG judged", || {
        let row = node.status_and_reason(&big);
        async move { row.filter(|(s, _)| *s != FileStatus::New) }
    })
    .await;
    assert_eq!(status, FileStatus::Skipped);
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.contains("real size") && r.contains("100000")),
        "{reason:?}"
    );
    eventually(60, "the honest order sealed", || {
        let s = node.status(&honest);
        async move { (s == Some(FileStatus::Sealed)).then_some(()) }
    })
    .await;
    eventually(60, "the unreachable DAG is pulled anyway", || {
        let s = node.status(&unreachable);
        async move { matches!(s, Some(FileStatus::Pinning | FileStatus::Queued)).then_some(()) }
    })
    .await;
    assert!(!node.sworker.valid_cids().contains(&big));
    node.stop().await;
    chain.stop().await;
}
