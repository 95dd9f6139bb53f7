//! The seal coordinator is actually used: asked before every pull (a `skipFile` answer skips the file with its
//! reason), told before every delete; and the telemetry report reaches its endpoint in the TypeScript shape.

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
    node.stop().await;
    coord.stop().await;
    chain.stop().await;
}
