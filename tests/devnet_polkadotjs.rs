//! Existing Crust tools connect to the devnet chain: polkadot.js with `@crustio/type-definitions` (what the
//! TypeScript manager, crust.js and Crust Apps use) loads its metadata and reads Market and Swork storage and events.
//! polkadot.js is installed by scripts/test.sh into `.cache/polkadotjs`; missing → skipped loudly (failed under CI).

mod common;

use std::sync::Arc;

use smanager::chain::ss58;
use smanager::devnet::chain::scenario::multisig_account;
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
    let me = ss58::encode(ss58::CRUST_PREFIX, &member);
    let v = common::polkadot_js(&dir, "check.js", &[&chain.ws_url(), &me]).await;
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

/// The devnet's blocks carry what real Crust blocks carry, next to the orders, and polkadot.js with Crust's bundle
/// decodes every one of them: session ends (ImOnline.SomeOffline, Offences, Session, an era's Staking.EraReward at
/// initialization, Grandpa.NewAuthorities at finalization), transfers, bonds, identity judgements, bridge transfers,
/// multisig orders, failed extrinsics with module errors, repeat orders on one CID in one extrinsic and one block.
/// Its reading of every FileSuccess (block, owner, CID) must equal the scenario's ground truth.
#[actix_rt::test]
async fn devnet_blocks_carry_what_real_blocks_carry_and_polkadot_js_reads_them() {
    let Some(dir) = common::npm_peer("POLKADOTJS_DIR", "polkadotjs", "node_modules/@polkadot/api") else {
        return;
    };
    const BLOCKS: u32 = 65; // three session ends, the third one an era
    let scenario = ScenarioConfig {
        seed: 4,
        order_rate: 2.0,
        ..Default::default()
    };
    let chain = common::devnet_history(scenario, BLOCKS).await;
    let (alice, bob) = (account("alice"), account("bob"));
    let signatories = format!(
        "{},{}",
        ss58::encode(ss58::CRUST_PREFIX, &alice),
        ss58::encode(ss58::CRUST_PREFIX, &bob)
    );
    let url = chain.ws_url();
    let last = BLOCKS.to_string();
    let v = common::polkadot_js(&dir, "devnet-blocks.js", &[&url, "1", &last, &signatories, "2"]).await;
    let multi = ss58::encode(ss58::CRUST_PREFIX, &multisig_account(&[alice, bob], 2));
    assert_eq!(
        v["multisig"].as_str(),
        Some(multi.as_str()),
        "multisig account as pallet-multisig derives it"
    );

    let blocks = v["blocks"].as_array().expect("blocks");
    assert_eq!(blocks.len(), BLOCKS as usize);
    let names = |b: &serde_json::Value| -> Vec<(String, String)> {
        b["events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["name"].as_str().unwrap_or("").to_string(),
                    e["phase"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    // Each kind must appear in a block that also holds an order.
    let with_orders: Vec<&serde_json::Value> = blocks
        .iter()
        .filter(|b| b["orders"].as_array().is_some_and(|o| !o.is_empty()))
        .collect();
    for (kind, phase) in [
        ("imOnline.SomeOffline", Some("Initialization")),
        ("offences.Offence", Some("Initialization")),
        ("session.NewSession", Some("Initialization")),
        ("staking.EraReward", Some("Initialization")),
        ("grandpa.NewAuthorities", Some("Finalization")),
        ("balances.Transfer", None),
        ("staking.Bonded", None),
        ("balances.ReserveRepatriated", None),
        ("identity.JudgementGiven", None),
        ("chainBridge.FungibleTransfer", None),
        ("multisig.NewMultisig", None),
        ("multisig.MultisigExecuted", None),
        ("utility.BatchCompleted", None),
        ("system.ExtrinsicFailed", None),
    ] {
        let found = with_orders.iter().flat_map(|b| names(b)).find(|(n, _)| n == kind);
        let (_, at) = found.unwrap_or_else(|| panic!("no {kind} in a block with orders"));
        if let Some(p) = phase {
            assert_eq!(at, p, "{kind} phase");
        }
    }
    let extrinsics: Vec<&str> = blocks
        .iter()
        .flat_map(|b| b["extrinsics"].as_array().into_iter().flatten())
        .filter_map(|x| x.as_str())
        .collect();
    for call in [
        "session.setKeys",
        "staking.bond",
        "balances.transfer",
        "multisig.asMulti",
        "multisig.approveAsMulti",
        "bridgeTransfer.transferNative",
        "identity.provideJudgement",
        "utility.batch",
        "utility.batchAll",
    ] {
        assert!(extrinsics.contains(&call), "{call} among the extrinsics");
    }
    let failures: Vec<&str> = blocks
        .iter()
        .flat_map(|b| b["failed"].as_array().into_iter().flatten())
        .filter_map(|f| f.as_str())
        .collect();
    for want in ["market.FileNotExist", "market.FileTooLarge"] {
        assert!(failures.contains(&want), "{want} among {failures:?}");
    }

    // Every FileSuccess as polkadot.js reads it equals the ground truth, repeats included.
    let mut read: Vec<(u64, String, String)> = blocks
        .iter()
        .flat_map(|b| {
            let n = b["number"].as_u64().unwrap_or(0);
            b["orders"].as_array().into_iter().flatten().map(move |o| {
                (
                    n,
                    o["owner"].as_str().unwrap_or("").to_string(),
                    o["cid"].as_str().unwrap_or("").to_string(),
                )
            })
        })
        .collect();
    let mut truth: Vec<(u64, String, String)> = chain
        .ground_truth()
        .orders
        .iter()
        .map(|o| (u64::from(o.block), o.owner.clone(), o.cid.clone()))
        .collect();
    read.sort();
    truth.sort();
    assert_eq!(read, truth);
    assert!(truth.iter().any(|(_, owner, _)| owner == &multi), "a multisig order");
    let repeats_in_a_block = truth.windows(2).filter(|w| w[0] == w[1]).count();
    assert!(
        repeats_in_a_block >= 2,
        "orders on one CID by one owner within one block: {repeats_in_a_block}"
    );
    chain.stop().await;
}
