//! The seal coordinator is actually used: asked before every pull (a `skipFile` answer skips the file with its
//! reason), told before every delete; and the telemetry report reaches its endpoint in the TypeScript shape. A
//! coordinator that disables pulls postpones them; one that is down is gone without, for pulls and deletes alike.

mod common;
#[path = "common/devnode.rs"]
mod devnode;

use std::sync::Arc;

use common::eventually;
use devnode::{any, Node};
use smanager::config::SealCoordinatorSettings;
use smanager::db::FileStatus;
use smanager::devnet::chain::{account, ChainConfig, DevChain};
use smanager::devnet::content::ContentStore;
use smanager::devnet::coordinator::CoordinatorSim;

#[actix_rt::test]
async fn coordinator_vetoes_and_hears_deletes_and_telemetry_arrives() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = DevChain::start(ChainConfig::quiet(200, vec![me]), Arc::new(content.clone()))
        .await
        .expect("chain");
    let coord = CoordinatorSim::start(any(), "tok3n").expect("coordinator");
    let url = coord.url();
    let node = Node::start(&chain.ws_url(), &me, &content, |s| {
        s.seal_coordinator = Some(SealCoordinatorSettings {
            end_point: url.clone(),
            node_uuid: "node-7".into(),
            auth_token: "tok3n".into(),
            ..Default::default()
        });
        s.telemetry.end_point = format!("{url}/telemetry");
        s.telemetry.interval_secs = 1;
    });
    let keep = content.build(1, 100_000, false, true).cid;
    let vetoed = content.build(2, 100_000, false, true).cid;
    coord.skip(&vetoed);
    chain.order_now(&keep, 100_000, 1);
    chain.order_now(&vetoed, 100_000, 1);
    eventually(60, "kept file sealed", || {
        let s = node.status(&keep);
        async move { (s == Some(FileStatus::Sealed)).then_some(()) }
    })
    .await;
    eventually(60, "vetoed file skipped", || {
        let s = node.status(&vetoed);
        async move { (s == Some(FileStatus::Skipped)).then_some(()) }
    })
    .await;
    assert!(!node.sworker.valid_cids().contains(&vetoed));
    let detail = {
        let mut c = node.db.conn();
        smanager::db::files::detail(&mut c, &vetoed)
            .expect("detail")
            .expect("row")
    };
    assert_eq!(detail.file.status_reason.as_deref(), Some("seal coordinator: skipFile"));
    chain.close_now(&keep, false);
    eventually(60, "kept file cleaned", || {
        let s = node.status(&keep);
        async move { (s == Some(FileStatus::Cleaned)).then_some(()) }
    })
    .await;
    let calls = coord.calls();
    let pos = |m: &str, c: &str| calls.iter().position(|(mm, cc)| mm == m && cc == c);
    assert!(
        pos("POST", &keep).is_some() && pos("POST", &vetoed).is_some(),
        "{calls:?}"
    );
    assert!(pos("DELETE", &keep) > pos("POST", &keep), "{calls:?}");
    let reports = eventually(30, "a telemetry report", || {
        let r = coord.telemetry();
        async move { (!r.is_empty()).then_some(r) }
    })
    .await;
    let r = &reports[reports.len() - 1];
    for k in [
        "chainAccount",
        "smangerInfo",
        "pinStats",
        "sworker",
        "queueStats",
        "cleanupStats",
        "groupInfo",
    ] {
        assert!(r.get(k).is_some(), "telemetry.{k}: {r}");
    }
    assert_eq!(r["hasSealCoordinator"], true);
    // TypeScript's nesting: the devnet sWorker has two SRD disks; the sealed file counts in the last 24 hours.
    assert_eq!(r["sworker"]["srd"]["srd_volumn_count"], 2, "{r}");
    assert!(r["queueStats"].get("pendingCount").is_some() && r["queueStats"].get("pendingSizeTotal").is_some());
    assert!(r["pinStats"]["sealedCount"].as_i64().is_some_and(|n| n >= 1), "{r}");
    node.stop().await;
    coord.stop().await;
    chain.stop().await;
}

/// TypeScript 1.0.3's `Bear:` header form is configurable; `pullDisabled` postpones (the file stays `new` and is
/// pulled once pulls are enabled again); a coordinator answering 503 stops neither pulls nor deletes.
#[actix_rt::test]
async fn coordinator_postpones_and_a_failing_one_is_gone_without() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = DevChain::start(ChainConfig::quiet(200, vec![me]), Arc::new(content.clone()))
        .await
        .expect("chain");
    let coord = CoordinatorSim::start(any(), "tok3n").expect("coordinator");
    coord.set_scheme("Bear:");
    coord.set_pull_disabled(true);
    let url = coord.url();
    let node = Node::start(&chain.ws_url(), &me, &content, |s| {
        s.seal_coordinator = Some(SealCoordinatorSettings {
            end_point: url.clone(),
            node_uuid: "node-8".into(),
            auth_token: "tok3n".into(),
            auth_scheme: "Bear:".into(),
        });
    });
    let later = content.build(3, 100_000, false, true).cid;
    chain.order_now(&later, 100_000, 1);
    eventually(60, "the coordinator asked about the file", || {
        let asked = coord.calls().iter().any(|(m, c)| m == "POST" && c == &later);
        async move { asked.then_some(()) }
    })
    .await;
    // Several rounds later the file is still waiting, not skipped.
    actix_rt::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(node.status(&later), Some(FileStatus::New));
    coord.set_pull_disabled(false);
    eventually(60, "postponed file sealed once pulls are enabled", || {
        let s = node.status(&later);
        async move { (s == Some(FileStatus::Sealed)).then_some(()) }
    })
    .await;

    coord.set_down(true);
    let failures_before = smanager::metrics::METRICS
        .coordinator_failures_total
        .with_label_values(&["mark_seal"])
        .get();
    let anyway = content.build(4, 100_000, false, true).cid;
    chain.order_now(&anyway, 100_000, 1);
    eventually(60, "pulled without the coordinator", || {
        let s = node.status(&anyway);
        async move { (s == Some(FileStatus::Sealed)).then_some(()) }
    })
    .await;
    assert!(
        smanager::metrics::METRICS
            .coordinator_failures_total
            .with_label_values(&["mark_seal"])
            .get()
            > failures_before
    );
    chain.close_now(&later, false);
    eventually(60, "deleted without the coordinator", || {
        let s = node.status(&later);
        async move { (s == Some(FileStatus::Cleaned)).then_some(()) }
    })
    .await;
    assert!(!node.sworker.valid_cids().contains(&later));
    node.stop().await;
    coord.stop().await;
    chain.stop().await;
}
