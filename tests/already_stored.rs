//! Coming from the TypeScript manager: files it already sealed are in the sWorker. When their CIDs come up, smanager
//! asks `file/info` first (as the TypeScript manager does) and records them as sealed, without a second `pin/add`
//! and without reserving space for them; files the sWorker does not hold are pulled as usual.

mod common;
#[path = "common/devnode.rs"]
mod devnode;

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;
use futures_util::StreamExt;

use common::eventually;
use devnode::Node;
use smanager::db::schema::{files, pins};
use smanager::db::FileStatus;
use smanager::devnet::chain::{account, ChainConfig, DevChain};
use smanager::devnet::content::ContentStore;
use smanager::ipfs::{Ipfs, KuboClient};

#[actix_rt::test]
async fn files_already_in_the_sworker_are_recorded_without_a_pull() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = DevChain::start(ChainConfig::quiet(200, vec![me]), Arc::new(content.clone()))
        .await
        .expect("chain");
    let node = Node::start(&chain.ws_url(), &me, &content, |_| {});
    let old = content.build(31, 120_000, false, true).cid;
    let new = content.build(32, 120_000, true, true).cid;

    // "The old manager" pins and so seals one file before smanager hears of it.
    let kubo = KuboClient::new(&node.ipfs.url(), Duration::from_secs(30));
    let mut stream = kubo.pin_add(&old, Duration::from_secs(30)).await.expect("pin/add");
    while let Some(ev) = stream.next().await {
        ev.expect("pin event");
    }
    assert!(node.sworker.valid_cids().contains(&old));
    let pins_before = node.ipfs.stats().pin_requests;

    chain.order_now(&old, 120_000, 1);
    chain.order_now(&new, 120_000, 1);
    eventually(60, "both sealed", || {
        let (a, b) = (node.status(&old), node.status(&new));
        async move { (a == Some(FileStatus::Sealed) && b == Some(FileStatus::Sealed)).then_some(()) }
    })
    .await;
    let reason: Option<String> = files::table
        .find(&old)
        .select(files::status_reason)
        .first(&mut node.db.conn())
        .expect("row");
    assert!(reason.is_some_and(|r| r.contains("already valid")), "reason says why");
    let old_pins: i64 = pins::table
        .filter(pins::cid.eq(&old))
        .count()
        .get_result(&mut node.db.conn())
        .expect("count");
    assert_eq!(old_pins, 0, "no pin row for a file the sWorker already had");
    assert_eq!(
        node.ipfs.stats().pin_requests,
        pins_before + 1,
        "only the new file was pulled"
    );
    node.stop().await;
    chain.stop().await;
}
