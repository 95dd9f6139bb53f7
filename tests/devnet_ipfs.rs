//! Contract tests of the Crust IPFS simulator: Kubo RPC dialect (POST only, Origin refused, error envelope, NDJSON
//! progress), and Crust's pin → seal flow into the sWorker, including cancellation when the client goes away.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use smanager::devnet::content::ContentStore;
use smanager::devnet::ipfs::{IpfsConfig, IpfsFault, IpfsSim};
use smanager::devnet::sworker::{SworkerConfig, SworkerSim};

fn any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

async fn post(client: &awc::Client, url: String) -> (u16, Vec<(String, String)>, String) {
    let mut r = client.post(url).send().await.expect("post");
    let headers = r
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let b = r.body().limit(1 << 24).await.expect("body");
    (r.status().as_u16(), headers, String::from_utf8_lossy(&b).into_owned())
}

#[actix_rt::test]
async fn kubo_dialect_and_crust_sealing() {
    let content = ContentStore::new();
    let sworker = SworkerSim::start(any(), SworkerConfig::default()).expect("sworker");
    let ipfs = IpfsSim::start(
        any(),
        IpfsConfig {
            transfer_rate: 2 * 1024 * 1024,
        },
        content.clone(),
        &sworker.url(),
    )
    .expect("ipfs");
    sworker.set_ipfs_url(&ipfs.url());
    let api = format!("{}/api/v0", ipfs.url());
    let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();

    // POST only; Origin refused.
    let r = client.get(format!("{api}/version")).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 405);
    let r = client
        .post(format!("{api}/version"))
        .insert_header(("Origin", "http://evil"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    let (s, _, b) = post(&client, format!("{api}/version")).await;
    assert_eq!(s, 200);
    assert!(serde_json::from_str::<Value>(&b).expect("json")["Version"].is_string());
    let (s, _, b) = post(&client, format!("{api}/id")).await;
    assert_eq!(s, 200, "{b}");

    // pin/add with progress on a 1.5 MB file fetched at 1 MB/s: NDJSON progress lines, then Pins; the sWorker holds
    // it valid.
    let f = content.build(11, 1_500_000, true, true);
    ipfs.set_transfer_rate(1_000_000);
    let (s, headers, body) = post(
        &client,
        format!("{api}/pin/add?arg={}&progress=true&timeout=60s", f.cid),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(headers.iter().any(|(k, v)| k == "x-chunked-output" && v == "1"));
    let lines: Vec<Value> = body.lines().map(|l| serde_json::from_str(l).expect("ndjson")).collect();
    assert!(lines.len() >= 2, "progress lines before the result: {body}");
    assert!(lines[0]["Progress"].is_number() && lines[0]["Pins"].is_null());
    assert_eq!(
        lines.last().map(|l| l["Pins"][0].clone()),
        Some(Value::from(f.cid.clone()))
    );
    assert!(headers.iter().any(|(k, v)| k == "trailer" && v == "X-Stream-Error"));
    assert!(sworker.valid_cids().contains(&f.cid), "pin/add returning means sealed");
    ipfs.set_transfer_rate(64 << 20);
    let st = sworker.stats();
    assert_eq!(st.seal_blocks, f.block_count(), "one seal call per block");
    // Pinning again answers at once.
    let t = Instant::now();
    let (s, _, b) = post(&client, format!("{api}/pin/add?arg={}", f.cid)).await;
    assert_eq!(s, 200, "{b}");
    assert!(t.elapsed() < Duration::from_secs(2));
    // pin/ls, files/stat, dag/stat, repo/stat.
    let (s, _, b) = post(&client, format!("{api}/pin/ls?arg={}", f.cid)).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&b).expect("json")["Keys"][&f.cid]["Type"],
        "recursive"
    );
    let (s, _, b) = post(&client, format!("{api}/files/stat?arg=/ipfs/{}", f.cid)).await;
    assert_eq!(s, 200);
    assert_eq!(serde_json::from_str::<Value>(&b).expect("json")["Size"], 1_500_000);
    let (s, _, b) = post(&client, format!("{api}/dag/stat?arg={}", f.cid)).await;
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&b).expect("json")["NumBlocks"],
        f.block_count()
    );
    let (s, _, b) = post(&client, format!("{api}/repo/stat")).await;
    assert_eq!(s, 200);
    assert!(serde_json::from_str::<Value>(&b).expect("json")["StorageMax"].is_number());

    // Errors use the envelope: bad CID (400, Code 1), not pinned (500).
    let (s, _, b) = post(&client, format!("{api}/pin/add?arg=not-a-cid")).await;
    assert_eq!(s, 400);
    let v: Value = serde_json::from_str(&b).expect("json");
    assert_eq!((v["Type"].as_str(), v["Code"].as_i64()), (Some("error"), Some(1)));
    let (s, _, b) = post(
        &client,
        format!("{api}/pin/ls?arg=QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn"),
    )
    .await;
    assert_eq!(s, 500);
    assert!(b.contains("is not pinned"));

    // A sWorker refusal fails the pin with its code: the file already sealed elsewhere (8012).
    let g = content.build(12, 10_000, false, true);
    let gb58 = g.cid.clone();
    awc::Client::default()
        .post(format!("{}/api/v0/storage/seal_start", sworker.url()))
        .send_json(&serde_json::json!({"cid": g.cid, "cid_b58": gb58}))
        .await
        .expect("seal_start");
    let (s, _, b) = post(&client, format!("{api}/pin/add?arg={}&timeout=20s", g.cid)).await;
    assert_eq!(s, 200, "{b}");
    assert!(b.contains("Start Seal error code is: 8013"), "{b}");

    // Unavailable content: the timeout ends the pin and no pending seal is left.
    let u = content.build(13, 10_000, false, false);
    let t = Instant::now();
    let (_, _, b) = post(&client, format!("{api}/pin/add?arg={}&timeout=1s", u.cid)).await;
    assert!(b.contains("context deadline exceeded"), "{b}");
    assert!(t.elapsed() >= Duration::from_secs(1));

    // A client that goes away cancels the pin, and the partial seal is discarded (seal_end).
    ipfs.set_transfer_rate(20_000);
    let slow = content.build(14, 1_000_000, false, true);
    {
        use futures_util::StreamExt;
        let short = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        let mut resp = short
            .post(format!("{api}/pin/add?arg={}&progress=true", slow.cid))
            .send()
            .await
            .expect("pin/add");
        // Read the first progress line, then hang up.
        let first = resp.next().await;
        assert!(first.is_some_and(|c| c.is_ok()));
        assert!(sworker.pending_cids().contains(&slow.cid), "sealing started");
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while ipfs.stats().pins_cancelled == 0 {
        assert!(
            Instant::now() < deadline,
            "the pin was not cancelled: {:?}",
            ipfs.stats()
        );
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!sworker.pending_cids().contains(&slow.cid), "partial seal discarded");
    assert!(!ipfs.pinned().contains(&slow.cid));

    // storage/delete unpins in IPFS; repo/gc then removes the blocks.
    awc::Client::default()
        .post(format!("{}/api/v0/storage/delete", sworker.url()))
        .send_json(&serde_json::json!({"cid": f.cid}))
        .await
        .expect("delete");
    assert!(!ipfs.pinned().contains(&f.cid));
    let (s, _, b) = post(&client, format!("{api}/repo/gc")).await;
    assert_eq!(s, 200);
    assert!(b
        .lines()
        .all(|l| serde_json::from_str::<Value>(l).is_ok_and(|v| v["Key"].is_object())));
    let (s, _, _) = post(&client, format!("{api}/pin/rm?arg={}", f.cid)).await;
    assert_eq!(s, 500, "not pinned any more");

    ipfs.set_fault(IpfsFault::ErrorAnswers);
    let (s, _, _) = post(&client, format!("{api}/version")).await;
    assert_eq!(s, 500);
    ipfs.stop().await;
    sworker.stop().await;
}
