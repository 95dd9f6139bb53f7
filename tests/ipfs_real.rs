//! The IPFS calls this change added, against a real IPFS node (js-ipfs, Kubo RPC API) rather than our simulator:
//! `files/stat` CumulativeSize for the real-size check, a bounded wait on a DAG nobody has, and `pin/rm` before a
//! retry (removed, then "not pinned" the second time).

mod common;
#[path = "common/jsipfs.rs"]
mod jsipfs;

use std::time::Duration;

use smanager::ipfs::{Ipfs, KuboClient, PinEvent};

/// `POST /api/v0/add` of `data` as one file; returns its CID.
async fn add(api: &str, data: &[u8]) -> String {
    let boundary = "smanagerboundary7d1";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let mut r = awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
        .post(format!("{api}/api/v0/add?pin=false&cid-version=0"))
        .insert_header(("Content-Type", format!("multipart/form-data; boundary={boundary}")))
        .send_body(body)
        .await
        .expect("add");
    let text = r.body().limit(1 << 20).await.expect("add body");
    let line = String::from_utf8_lossy(&text);
    let v: serde_json::Value = serde_json::from_str(line.lines().last().unwrap_or("{}")).expect("add JSON");
    v["Hash"].as_str().expect("Hash").to_string()
}

#[actix_rt::test]
async fn size_check_and_unpin_against_a_real_ipfs_node() {
    let Some(node) = jsipfs::JsIpfs::start(5) else { return };
    let data: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    let cid = add(&node.api, &data).await;
    let kubo = KuboClient::new(&node.api, Duration::from_secs(30));

    // CumulativeSize covers the data plus the DAG's own bytes: a little more than the file, never less.
    let size = kubo
        .cumulative_size(&cid, Duration::from_secs(10))
        .await
        .expect("files/stat");
    assert!(
        size >= data.len() as u64 && size < data.len() as u64 * 11 / 10,
        "{size} for {} bytes",
        data.len()
    );

    // A DAG nobody has: the bounded wait ends with an error instead of hanging the pick.
    let nobody = "QmZ4tDuvesekSs4qM5ZBKpXiZGun7S2CYtEZRB3DYXkjGx";
    let started = std::time::Instant::now();
    assert!(kubo.cumulative_size(nobody, Duration::from_secs(2)).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());

    // Pinned, then removed before a retry; a second removal reports "not pinned" as Ok(false).
    let mut stream = kubo.pin_add(&cid, Duration::from_secs(30)).await.expect("pin/add");
    let mut pinned = false;
    while let Some(ev) = futures_util::StreamExt::next(&mut stream).await {
        pinned |= ev.expect("pin event") == PinEvent::Pinned;
    }
    assert!(pinned);
    assert!(kubo.pin_rm(&cid).await.expect("pin/rm"));
    assert!(!kubo.pin_rm(&cid).await.expect("pin/rm of an unpinned CID"));
}
