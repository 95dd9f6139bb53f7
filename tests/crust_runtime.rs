//! Orders placed with real sr25519-signed extrinsics on Crust's real runtimes under chopsticks — spec 25 (the live
//! mainnet runtime) and spec 1 (genesis) — in the shapes an indexer gets wrong: singles, with a memo, two orders on
//! one CID in one `utility.batch`, two identical orders in one block, `batch_all`, a nested batch, an interrupted
//! batch, `as_derivative`, CIDv0 and CIDv1 in base32/base58/base16, next to another pallet's extrinsic and a failed
//! one (a module error), an identity judgement and (spec 25) a bridge transfer in an order's block
//! (Balances.ReserveRepatriated, ChainBridge.FungibleTransfer), and around
//! session changes up to an era boundary (Session, ImOnline, Offences, Staking, Grandpa events), which must decode. The reference is polkadot.js with Crust's type bundle (`test-peers/polkadotjs/
//! crust-orders.js`); the indexer (following every block from the first) and the scanner (the runtime's own file
//! map) must store exactly what it reads: CID text, size, summed tips, owners with order counts, expiry, amount and
//! replicas.

#[path = "common/chopsticks.rs"]
mod chopsticks;
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use diesel::prelude::*;

use common::{eventually, TestDb};
use smanager::chain::client::SubxtChain;
use smanager::chain::ChainSource;
use smanager::db::schema::{cleanups, file_owners, files};
use smanager::db::state;
use smanager::db::FileStatus;

/// What polkadot.js read: the orders the chain accepted and the file map.
#[derive(Debug, serde::Deserialize)]
struct Reference {
    spec: u32,
    head: u64,
    orders: Vec<RefOrder>,
    files: BTreeMap<String, RefFile>,
    failed: u32,
    sessions: Vec<String>,
    /// Block number → its `timestamp.set` time (ms), as polkadot.js decodes it.
    times: BTreeMap<u64, String>,
}

#[derive(Debug, serde::Deserialize)]
struct RefOrder {
    cid: String,
    owner: String,
    size: Option<String>,
    tips: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct RefFile {
    size: String,
    expired_at: String,
    amount: String,
    replicas: String,
}

async fn orders_on(chain_spec: &str, want_spec: u32) {
    let Some(artefacts) = common::crust_artefacts() else {
        return;
    };
    let Some(pjs_dir) = common::npm_peer("POLKADOTJS_DIR", "polkadotjs", "node_modules/@polkadot/api") else {
        return;
    };
    let Some(chopsticks) = chopsticks::crust(&artefacts, chain_spec) else {
        return;
    };
    let url = format!("ws://127.0.0.1:{}", chopsticks.port);
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("test-peers/polkadotjs/crust-orders.js"))
        .arg(&url)
        .current_dir(&pjs_dir)
        .env("NODE_PATH", pjs_dir.join("node_modules"))
        .output()
        .expect("node crust-orders.js");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "placing orders failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("reference JSON line");
    let reference: Reference = serde_json::from_str(line).expect("reference JSON");
    assert_eq!(reference.spec, want_spec, "{line}");
    // Spec 1 has no Multisig and no bridge: two orders fewer.
    assert_eq!(
        reference.orders.len(),
        if want_spec == 25 { 16 } else { 14 },
        "every shape placed an order: {line}"
    );
    for want in [
        "session.NewSession",
        "imOnline.SomeOffline",
        "grandpa.NewAuthorities",
        "balances.ReserveRepatriated",
        "identity.JudgementGiven",
    ] {
        assert!(
            reference.sessions.iter().any(|e| e == want),
            "{want} is among the blocks: {line}"
        );
    }
    assert!(
        reference.sessions.iter().any(|e| e.starts_with("staking.")),
        "an era boundary is among the blocks: {line}"
    );
    if want_spec == 25 {
        assert!(
            reference.sessions.iter().any(|e| e == "chainBridge.FungibleTransfer"),
            "a bridge transfer is in an order's block: {line}"
        );
    }
    assert_eq!(reference.failed, 1, "the failed extrinsic is in the chain: {line}");
    assert!(
        reference.sessions.iter().any(|e| e == "market.CalculateSuccess")
            && !reference.sessions.iter().any(|e| e == "market.FileClosed"),
        "a CalculateSuccess on a live file, which the chain keeps: {line}"
    );
    assert!(
        reference.orders.iter().all(|o| o.size.is_some() && o.tips.is_some()),
        "{line}"
    );

    // The pipeline, following every block from the first and scanning the runtime's file map.
    let t = TestDb::migrated();
    {
        let mut c = t.conn();
        state::set_block_cursor(&mut c, state::INDEXER_CURSOR, 0, "0x0").expect("cursor");
    }
    let mut settings = t.app_settings();
    settings.chain.end_point = url.clone();
    settings.chain.scan_cooldown_secs = 3600;
    settings.chain.poll_interval_ms = 200;
    let peers = common::start_indexing(&t, settings, "test/crust-runtime");
    let head = i64::try_from(reference.head).expect("head");
    eventually(180, "every block indexed and one scan round done", || {
        let mut c = t.conn();
        let indexed = state::cursor(&mut c, state::INDEXER_CURSOR)
            .ok()
            .flatten()
            .and_then(|c| c.block_number)
            .is_some_and(|b| b >= head);
        let scanned = state::cursor(&mut c, state::SCANNER_CURSOR)
            .ok()
            .flatten()
            .is_some_and(|c| c.scan_round >= 1);
        async move { (indexed && scanned).then_some(()) }
    })
    .await;
    smanager::app::shutdown(&peers).await;

    let mut c = t.conn();
    let mut want_tips: BTreeMap<&str, u128> = BTreeMap::new();
    let mut want_owners: BTreeMap<(&str, &str), i32> = BTreeMap::new();
    for o in &reference.orders {
        let tips: u128 = o.tips.as_deref().unwrap_or("0").parse().expect("tips");
        *want_tips.entry(&o.cid).or_default() += tips;
        *want_owners.entry((&o.cid, &o.owner)).or_default() += 1;
    }
    let rows: Vec<(
        String,
        i64,
        bigdecimal::BigDecimal,
        bigdecimal::BigDecimal,
        i64,
        i32,
        bool,
    )> = files::table
        .select((
            files::cid,
            files::size_bytes,
            files::tips,
            files::amount,
            files::expired_at,
            files::replicas,
            files::seen_by_event,
        ))
        .order(files::cid)
        .load(&mut c)
        .expect("files");
    let got: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let want: Vec<&str> = want_tips.keys().copied().collect();
    assert_eq!(got, want, "one row per ordered CID, CID text as on chain, nothing else");
    for (cid, size, tips, amount, expired, replicas, by_event) in &rows {
        let f = &reference.files[cid.as_str()];
        assert!(by_event, "{cid} came through the event path");
        assert_eq!(size.to_string(), f.size, "{cid}: size");
        assert_eq!(
            tips.to_string(),
            want_tips[cid.as_str()].to_string(),
            "{cid}: summed tips"
        );
        assert_eq!(amount.to_string(), f.amount, "{cid}: amount");
        assert_eq!(expired.to_string(), f.expired_at, "{cid}: expiry");
        assert_eq!(replicas.to_string(), f.replicas, "{cid}: replicas");
    }
    let owners: Vec<(String, String, i32)> = file_owners::table
        .select((file_owners::cid, file_owners::owner, file_owners::orders))
        .order((file_owners::cid, file_owners::owner))
        .load(&mut c)
        .expect("owners");
    let owners: BTreeMap<(&str, &str), i32> = owners.iter().map(|(c, o, n)| ((c.as_str(), o.as_str()), *n)).collect();
    assert_eq!(owners, want_owners, "owners with their order counts");
    // Every file is live on chain (the CalculateSuccess one included): none may ever have been closed here, nor
    // its deletion queued, even for a moment before a scan repaired it.
    let statuses: Vec<(String, FileStatus)> = files::table
        .select((files::cid, files::status))
        .load(&mut c)
        .expect("statuses");
    assert!(
        statuses
            .iter()
            .all(|(_, s)| !matches!(s, FileStatus::Closed | FileStatus::Cleaned)),
        "{statuses:?}"
    );
    let cleanups: i64 = cleanups::table.count().get_result(&mut c).expect("cleanups");
    assert_eq!(cleanups, 0, "no deletion was ever queued");
    common::assert_every_block_decoded(&mut c, "every block, the session change included");

    // The runtime versions a catch-up learns up front (both ends and a bisection) are what the real runtime answers
    // for each block: the decoder can skip asking it per block.
    let client = SubxtChain::connect(&url).await.expect("connect");
    client
        .learn_runtime_versions(1, reference.head)
        .await
        .expect("runtime versions");
    for n in 1..=reference.head {
        let hash = common::block_hash(&client, n).await;
        let v = client
            .rpc()
            .state_get_runtime_version(Some(hash))
            .await
            .expect("runtime version");
        assert_eq!(
            client.known_runtime_version(n),
            Some((v.spec_version, v.transaction_version)),
            "block {n}"
        );
        // The block's time, read from its `timestamp.set` inherent, is the one polkadot.js reads there.
        let block = client.block(n).await.unwrap_or_else(|e| panic!("block {n}: {e}"));
        // The indexer's layout reader gives every block of the real runtime what subxt gives it: every event of
        // every pallet is stepped over by layout, so one wrong size would misread the rest of the block.
        let by_layout = common::read_by_both(&client, n).await;
        assert_eq!(block, by_layout, "block {n}: the indexer's reader");
        assert_eq!(
            block.timestamp_ms.map(|t| t.to_string()).as_ref(),
            reference.times.get(&n),
            "block {n}: time"
        );
    }
    drop(chopsticks);
}

#[actix_rt::test]
async fn orders_on_the_live_runtime_spec_25_are_stored_as_polkadot_js_reads_them() {
    orders_on("crust-spec25-devchain.json", 25).await;
}

#[actix_rt::test]
async fn orders_on_the_genesis_runtime_spec_1_are_stored_as_polkadot_js_reads_them() {
    orders_on("mainnet-genesis.json", 1).await;
}
