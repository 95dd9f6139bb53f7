//! Existing Crust tools connect to the devnet chain: polkadot.js with `@crustio/type-definitions` (what the
//! TypeScript manager, crust.js and Crust Apps use) loads its metadata and reads Market and Swork storage and events.
//! polkadot.js is installed by scripts/test.sh into `.cache/polkadotjs`; missing → skipped loudly (failed under CI).

mod common;

use std::sync::Arc;

use smanager::chain::ss58;
use smanager::devnet::chain::{account, ChainConfig, DevChain, ScenarioConfig};
use smanager::devnet::content::ContentStore;

#[actix_rt::test]
async fn polkadot_js_with_the_crust_type_bundle_reads_the_devnet() {
    let Some(dir) = common::npm_peer("POLKADOTJS_DIR", "polkadotjs", "node_modules/@polkadot/api") else {
        return;
    };
    let member = account("m0");
    let chain = DevChain::start(
        ChainConfig {
            scenario: ScenarioConfig {
                seed: 9,
                order_rate: 3.0,
                ..Default::default()
            },
            ..ChainConfig::quiet(0, vec![member])
        },
        Arc::new(ContentStore::new()),
    )
    .await
    .expect("chain");
    for _ in 0..4 {
        chain.produce_block();
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/test-peers/polkadotjs/check.js");
    let me = ss58::encode(ss58::CRUST_PREFIX, &member);
    let out = tokio::process::Command::new("node")
        .arg(script)
        .arg(chain.ws_url())
        .arg(&me)
        .env("NODE_PATH", dir.join("node_modules"))
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or("")).expect("json");
    assert_eq!(v["chain"], "Crust");
    assert_eq!(v["spec"], 25);
    assert_eq!(v["metadataVersion"], 12);
    let truth = chain.ground_truth();
    let live = chain.with_state(|s| s.files.len()).unwrap_or(0);
    assert_eq!(v["files"].as_u64(), Some(live as u64), "{v}");
    let sample = v["sample"]["cid"].as_str().unwrap_or("");
    assert!(truth.orders.iter().any(|o| o.cid == sample), "{v}");
    let events: Vec<String> = serde_json::from_value(v["events"].clone()).unwrap_or_default();
    assert!(events.iter().any(|e| e == "market.FileSuccess"), "{events:?}");
    assert!(events.iter().any(|e| e == "system.ExtrinsicSuccess"));
    assert_eq!(
        v["group"],
        ss58::encode(ss58::CRUST_PREFIX, &account("owner")),
        "Swork.Identities.group"
    );
    chain.stop().await;
}
