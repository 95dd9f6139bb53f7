//! The devnet chain through subxt: the project's chain client (subxt legacy backend + the Crust type file) follows
//! 20 finalized blocks and finds every order and close the scenario made, with the right size, tips and owner.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::StreamExt;
use smanager::chain::client::SubxtChain;
use smanager::chain::{ChainEvent, ChainSource, CloseReason};
use smanager::devnet::chain::{account, ChainConfig, DevChain, ScenarioConfig};
use smanager::devnet::content::ContentStore;

fn config(order_rate: f64) -> ChainConfig {
    ChainConfig {
        scenario: ScenarioConfig {
            seed: 7,
            order_rate,
            close_after_blocks: 4,
            close_share: 0.5,
            max_size: 1_000_000,
            ..Default::default()
        },
        ..ChainConfig::quiet(0, vec![account("member-0")])
    }
}

#[actix_rt::test]
async fn subxt_client_reads_every_order_and_close_from_20_blocks() {
    let content = ContentStore::new();
    let chain = DevChain::start(config(3.0), Arc::new(content)).await.expect("chain");
    for _ in 0..20 {
        chain.produce_block();
    }
    let client = SubxtChain::connect(&chain.ws_url()).await.expect("connect");
    assert_eq!(client.finalized_head().await.expect("head"), 20);
    let mut orders: HashMap<String, Vec<(u64, u128, String)>> = HashMap::new();
    let mut closes: Vec<(String, CloseReason)> = Vec::new();
    for n in 1..=20 {
        let b = client.block(n).await.unwrap_or_else(|e| panic!("block {n}: {e}"));
        assert_eq!(b.number, n);
        assert!(b.timestamp_ms.is_some());
        for ev in b.events {
            match ev {
                ChainEvent::Ordered(o) => orders.entry(o.cid).or_default().push((o.size, o.tips, o.owner)),
                ChainEvent::Closed { cid, reason } => closes.push((cid, reason)),
                ChainEvent::Invalid { raw, reason } => panic!("invalid {raw}: {reason}"),
                ChainEvent::Refreshed(_) => {}
            }
        }
    }
    let truth = chain.ground_truth();
    assert!(truth.orders.len() >= 40, "{} orders", truth.orders.len());
    assert!(
        truth.orders.iter().any(|o| o.in_batch),
        "some orders sit inside utility.batch"
    );
    let mut expected: HashMap<String, Vec<(u64, u128, String)>> = HashMap::new();
    for o in &truth.orders {
        expected
            .entry(o.cid.clone())
            .or_default()
            .push((o.size, o.tips, o.owner.clone()));
    }
    assert_eq!(orders, expected, "every order exactly once, with size, tips and owner");
    let mut want: Vec<(String, CloseReason)> = truth
        .closes
        .iter()
        .map(|c| {
            (
                c.cid.clone(),
                if c.illegal {
                    CloseReason::Illegal
                } else {
                    CloseReason::Closed
                },
            )
        })
        .collect();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    closes.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!want.is_empty());
    assert_eq!(closes, want);
    chain.stop().await;
}

/// A devnet chain with `before` blocks at spec 25, then the spec-26 upgrade, then `after` blocks.
async fn upgraded_chain(before: usize, after: usize) -> DevChain {
    let chain = DevChain::start(config(3.0), Arc::new(ContentStore::new()))
        .await
        .expect("chain");
    for _ in 0..before {
        chain.produce_block();
    }
    chain.upgrade_runtime();
    for _ in 0..after {
        chain.produce_block();
    }
    chain
}

/// How many orders the scenario placed on each CID.
fn orders_by_cid(chain: &DevChain) -> HashMap<String, usize> {
    let mut want: HashMap<String, usize> = HashMap::new();
    for o in chain.ground_truth().orders {
        *want.entry(o.cid).or_default() += 1;
    }
    want
}

/// Orders per CID in decoded blocks (numbered, each of which must have decoded).
fn orders_in(
    blocks: Vec<(u64, Result<smanager::chain::IndexedBlock, smanager::chain::ChainError>)>,
) -> HashMap<String, usize> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (n, b) in blocks {
        let b = b.unwrap_or_else(|e| panic!("block {n}: {e}"));
        for ev in b.events {
            if let ChainEvent::Ordered(o) = ev {
                *seen.entry(o.cid).or_default() += 1;
            }
        }
    }
    seen
}

#[actix_rt::test]
async fn a_runtime_upgrade_mid_stream_moves_market_and_nothing_is_missed() {
    let chain = upgraded_chain(8, 8).await;
    let client = SubxtChain::connect(&chain.ws_url()).await.expect("connect");
    let mut blocks = Vec::new();
    for n in 1..=16 {
        blocks.push((n, client.block(n).await));
    }
    let seen = orders_in(blocks);
    let want = orders_by_cid(&chain);
    assert_eq!(
        seen, want,
        "orders before and after the upgrade (Market 26 → 27) are all decoded"
    );
    // The runtime really changed: spec 26 from block 9 on.
    let hash9 = chain
        .with_state(|s| format!("0x{}", hex::encode(s.blocks[9].hash)))
        .expect("hash");
    let mut r = awc::Client::default()
        .post(chain.http_url())
        .send_json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "state_getRuntimeVersion", "params": [hash9]}),
        )
        .await
        .expect("rpc");
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["result"]["specVersion"], 26);
    chain.stop().await;
}

#[actix_rt::test]
async fn a_catch_up_asks_the_runtime_version_only_around_an_upgrade_and_decodes_every_block_with_its_own() {
    let chain = upgraded_chain(40, 40).await;
    let client = SubxtChain::connect(&chain.ws_url()).await.expect("connect");
    // Only the ends known: an upgrade lies between them, so nothing in between is assumed.
    client.learn_runtime_version(1).await.expect("version of block 1");
    client.learn_runtime_version(80).await.expect("version of block 80");
    assert_eq!(client.known_runtime_version(1).map(|v| v.0), Some(25));
    assert_eq!(client.known_runtime_version(80).map(|v| v.0), Some(26));
    assert_eq!(client.known_runtime_version(20), None);
    // What a catch-up does: pin the upgrade (a bisection), then read every block, many at once.
    let before = chain.runtime_calls();
    client.learn_runtime_versions(1, 80).await.expect("versions of 1..=80");
    let bisection = chain.runtime_calls() - before;
    assert!(
        (1..=8).contains(&bisection),
        "{bisection} runtime calls to pin one upgrade in 80 blocks"
    );
    assert_eq!(client.known_runtime_version(40).map(|v| v.0), Some(25));
    assert_eq!(client.known_runtime_version(41).map(|v| v.0), Some(26));
    let before = chain.runtime_calls();
    let blocks: Vec<_> = futures_util::stream::iter(1..=80u64)
        .map(|n| {
            let client = &client;
            async move { (n, client.block(n).await) }
        })
        .buffered(16)
        .collect()
        .await;
    let seen = orders_in(blocks);
    let want = orders_by_cid(&chain);
    assert_eq!(
        seen, want,
        "every order before and after the upgrade, each decoded with its own runtime"
    );
    // Without the versions learned each of the 80 blocks costs a runtime call (subxt asks `Core_version`).
    assert_eq!(
        chain.runtime_calls(),
        before,
        "runtime calls while reading blocks of known versions"
    );
    // A second pass over the same blocks asks nothing either.
    let before = chain.runtime_calls();
    for n in [3, 39, 40, 41, 42, 79] {
        client.block(n).await.unwrap_or_else(|e| panic!("block {n}: {e}"));
    }
    assert_eq!(chain.runtime_calls(), before, "versions already known were asked again");
    chain.stop().await;
}
