//! The chain client against a real Substrate runtime with V14+ metadata: chopsticks running the Rococo Asset Hub
//! genesis (installed by scripts/test.sh into `.cache/chopsticks`). The same code paths as on Crust: follow finalized
//! blocks (decoded with the metadata of their runtime) and page `System.Account` with keys and batched values.

use std::time::Duration;

#[path = "common/chopsticks.rs"]
mod chopsticks;
mod common;

use smanager::chain::client::SubxtChain;
use smanager::chain::ChainSource;

async fn new_block(port: u16) {
    let mut r = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
        .post(format!("http://127.0.0.1:{port}"))
        .send_json(&serde_json::json!({"id": 1, "jsonrpc": "2.0", "method": "dev_newBlock", "params": [{"count": 1}]}))
        .await
        .expect("dev_newBlock");
    let body = r.body().await.expect("body");
    assert!(
        !String::from_utf8_lossy(&body).contains("\"error\""),
        "{}",
        String::from_utf8_lossy(&body)
    );
}

#[actix_rt::test]
async fn follows_finalized_blocks_and_pages_system_account() {
    let Some(peer) = chopsticks::asset_hub() else { return };
    let client = SubxtChain::connect(&format!("ws://127.0.0.1:{}", peer.port))
        .await
        .expect("connect");
    let first = client.finalized_head().await.expect("head");
    for _ in 0..3 {
        new_block(peer.port).await;
    }
    let head = client.finalized_head().await.expect("head");
    assert_eq!(head, first + 3, "chopsticks finalizes each new block");
    for n in first + 1..=head {
        let b = client.block(n).await.unwrap_or_else(|e| panic!("block {n}: {e}"));
        assert_eq!(b.number, n);
        let stored = common::stored_timestamp(&client, common::block_hash(&client, n).await).await;
        assert!(stored.is_some(), "Timestamp.Now at block {n}");
        assert_eq!(
            b.timestamp_ms, stored,
            "block {n}: the inherent's time is the stored one"
        );
        assert!(b.events.is_empty(), "no Crust market events on Asset Hub");
    }
    // System.Account: paged keys, then values in one batch per page.
    let prefix = [
        sp_crypto_hashing::twox_128(b"System"),
        sp_crypto_hashing::twox_128(b"Account"),
    ]
    .concat();
    let mut start = None;
    let mut accounts = 0;
    loop {
        let page = client.keys_paged(prefix.clone(), 5, start.clone()).await.expect("keys");
        if page.is_empty() {
            break;
        }
        let values = client.values(page.clone()).await.expect("values");
        assert_eq!(values.len(), page.len());
        assert!(
            values.iter().all(|v| v.as_ref().is_some_and(|v| v.len() >= 16)),
            "AccountInfo values"
        );
        accounts += page.len();
        start = page.last().cloned();
        if page.len() < 5 {
            break;
        }
    }
    assert!(accounts > 0, "genesis accounts found");
    assert!(!client.is_syncing().await.expect("system_health"));
}
