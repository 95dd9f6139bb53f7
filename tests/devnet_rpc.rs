//! The devnet chain's JSON-RPC over plain HTTP and WebSocket: every method the legacy backend, the indexer and
//! polkadot.js call, answers at a given block, and the standard error for unknown methods.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use smanager::chain::keys;
use smanager::devnet::chain::{account, ChainConfig, DevChain, GroupSpec, ScenarioConfig};
use smanager::devnet::content::ContentStore;

async fn rpc(client: &awc::Client, url: &str, method: &str, params: Value) -> Value {
    let mut r = client
        .post(url)
        .send_json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .await
        .expect("post");
    let b = r.body().limit(1 << 26).await.expect("body");
    serde_json::from_slice(&b).expect("json")
}

#[actix_rt::test]
async fn every_method_over_http_and_subscriptions_over_ws() {
    let chain = DevChain::start(
        ChainConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            block_ms: 0,
            scenario: ScenarioConfig {
                seed: 3,
                order_rate: 2.0,
                ..Default::default()
            },
            group: GroupSpec {
                owner: account("owner"),
                members: vec![account("m0"), account("m1")],
            },
            prefill: 2500,
        },
        Arc::new(ContentStore::new()),
    )
    .await
    .expect("chain");
    for _ in 0..5 {
        chain.produce_block();
    }
    let url = chain.http_url();
    let c = awc::Client::builder().timeout(Duration::from_secs(30)).finish();

    let v = rpc(&c, &url, "rpc_methods", json!([])).await;
    assert!(v["result"]["methods"].as_array().is_some_and(|m| m.len() > 20));
    let v = rpc(&c, &url, "system_chain", json!([])).await;
    assert_eq!(v["result"], "Crust");
    let v = rpc(&c, &url, "system_properties", json!([])).await;
    assert_eq!(v["result"]["ss58Format"], 66);
    for m in ["system_name", "system_version", "system_health"] {
        assert!(
            rpc(&c, &url, m, json!([])).await["result"].is_object()
                || rpc(&c, &url, m, json!([])).await["result"].is_string(),
            "{m}"
        );
    }
    let v = rpc(&c, &url, "state_getRuntimeVersion", json!([])).await;
    assert_eq!(
        (v["result"]["specName"].as_str(), v["result"]["specVersion"].as_u64()),
        (Some("crust"), Some(25))
    );
    let genesis = rpc(&c, &url, "chain_getBlockHash", json!([0])).await["result"].clone();
    assert!(genesis.as_str().is_some_and(|h| h.len() == 66));
    let head = rpc(&c, &url, "chain_getFinalizedHead", json!([])).await["result"].clone();
    let h = rpc(&c, &url, "chain_getHeader", json!([head])).await;
    assert_eq!(h["result"]["number"], "0x5");
    let h3 = rpc(&c, &url, "chain_getBlockHash", json!([3])).await["result"].clone();
    let b = rpc(&c, &url, "chain_getBlock", json!([h3])).await;
    let header = &b["result"]["block"]["header"];
    assert_eq!(header["number"], "0x3");
    let parent = rpc(&c, &url, "chain_getBlockHash", json!([2])).await["result"].clone();
    assert_eq!(header["parentHash"], parent);
    let exts = b["result"]["block"]["extrinsics"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(exts.len() >= 2, "timestamp inherent plus orders");
    assert!(
        exts[1].as_str().is_some_and(|x| x.contains("84")),
        "signed v4 extrinsics"
    );
    let md = rpc(&c, &url, "state_getMetadata", json!([])).await["result"].clone();
    assert!(
        md.as_str().is_some_and(|m| m.starts_with("0x6d6574610c")),
        "magic `meta` then V12"
    );
    let v = rpc(&c, &url, "state_call", json!(["Core_version", "0x", head])).await;
    assert!(v["result"].is_string());
    let v = rpc(&c, &url, "state_call", json!(["Metadata_metadata_versions", "0x"])).await;
    assert!(v["error"].is_object(), "a V12 runtime has no metadata_versions");

    // Storage: Timestamp.Now at block 3 vs head, keys paged over FilesV2, batched values.
    let now_key = format!("0x{}", hex::encode(keys::timestamp_now()));
    let t3 = rpc(&c, &url, "state_getStorage", json!([now_key, h3])).await["result"].clone();
    let t5 = rpc(&c, &url, "state_getStorage", json!([now_key])).await["result"].clone();
    assert_ne!(t3, t5, "state is per block");
    let prefix = format!("0x{}", hex::encode(keys::files_v2_prefix()));
    let page1 = rpc(&c, &url, "state_getKeysPaged", json!([prefix, 1000, null])).await["result"].clone();
    let page1 = page1.as_array().cloned().unwrap_or_default();
    assert_eq!(page1.len(), 1000);
    let last = page1.last().cloned().unwrap_or(Value::Null);
    let page2 = rpc(&c, &url, "state_getKeysPaged", json!([prefix, 1000, last])).await["result"].clone();
    assert!(page2.as_array().is_some_and(|p| p.len() == 1000 && p[0] != page1[0]));
    let too_many = rpc(&c, &url, "state_getKeysPaged", json!([prefix, 1001, null])).await;
    assert!(too_many["error"].is_object());
    let batch: Vec<Value> = page1.iter().take(150).cloned().collect();
    let q = rpc(&c, &url, "state_queryStorageAt", json!([batch])).await;
    let changes = q["result"][0]["changes"].as_array().cloned().unwrap_or_default();
    assert_eq!(changes.len(), 150);
    assert!(changes.iter().all(|ch| ch[1].is_string()));
    for k in page1.iter().take(20) {
        let key = hex::decode(k.as_str().unwrap_or("").trim_start_matches("0x")).expect("hex");
        assert!(keys::cid_from_files_key(&key).is_ok_and(|c| cid::Cid::try_from(c.as_str()).is_ok()));
    }

    // Unknown method: the standard error.
    let v = rpc(&c, &url, "author_nope", json!([])).await;
    assert_eq!(v["error"]["code"], -32601);

    // WebSocket: finalized-head and storage subscriptions.
    let (_, mut ws) = awc::Client::new().ws(chain.ws_url()).connect().await.expect("ws");
    ws.send(awc::ws::Message::Text(
        json!({"jsonrpc": "2.0", "id": 1, "method": "chain_subscribeFinalizedHeads", "params": []})
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
    ws.send(awc::ws::Message::Text(
        json!({"jsonrpc": "2.0", "id": 2, "method": "state_subscribeStorage", "params": [[now_key]]})
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
    let mut heads = Vec::new();
    let mut storage = 0;
    let mut answered = 0;
    let mut produced = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while (heads.len() < 2 || storage < 2) && std::time::Instant::now() < deadline {
        if answered == 2 && heads.len() == 1 && storage == 1 && !produced {
            chain.produce_block();
            produced = true;
        }
        let Ok(Some(Ok(awc::ws::Frame::Text(t)))) = actix_rt::time::timeout(Duration::from_secs(5), ws.next()).await
        else {
            continue;
        };
        let v: Value = serde_json::from_slice(&t).expect("json");
        match v["method"].as_str() {
            Some("chain_finalizedHead") => heads.push(v["params"]["result"]["number"].clone()),
            Some("state_storage") => storage += 1,
            _ if v.get("id").is_some() && v.get("result").is_some() => answered += 1,
            _ => {}
        }
    }
    assert_eq!(heads, vec![json!("0x5"), json!("0x6")]);
    assert!(storage >= 2);
    chain.stop().await;
}
