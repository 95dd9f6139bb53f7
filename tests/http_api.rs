//! The admin server's routes against a real database: JSON API, auth on mutating routes, metrics, status page HTML.

mod common;

use std::time::Duration;

use common::TestDb;
use smanager::chain::{ChainEvent, CloseReason, FileOrder, IndexedBlock};
use smanager::db::{files, FileStatus};

const CID: &str = "QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn";
const CID2: &str = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";

fn seed(t: &TestDb) {
    let mut c = t.conn();
    let order = |cid: &str| {
        ChainEvent::Ordered(FileOrder {
            cid: cid.into(),
            size: 2048,
            tips: 5,
            owner: "alice".into(),
        })
    };
    files::apply_block(
        &mut c,
        &IndexedBlock {
            number: 3,
            hash: "0x3".into(),
            timestamp_ms: None,
            events: vec![order(CID), order(CID2)],
        },
    )
    .expect("apply");
    files::apply_block(
        &mut c,
        &IndexedBlock {
            number: 4,
            hash: "0x4".into(),
            timestamp_ms: None,
            events: vec![ChainEvent::Closed {
                cid: CID2.into(),
                reason: CloseReason::Closed,
            }],
        },
    )
    .expect("apply");
    files::transition(&mut c, CID, &[FileStatus::New], FileStatus::Failed, None, None).expect("fail");
}

#[actix_rt::test]
async fn routes_auth_and_metrics() {
    let t = TestDb::migrated();
    seed(&t);
    let mut settings = t.app_settings();
    settings.admin.bind = "127.0.0.1:0".into();
    settings.admin.auth_token = "s3cret".into();
    let server = smanager::http::start(&settings, t.db(), None).expect("start");
    let base = format!("http://{}", server.addr);
    let client = awc::Client::builder().timeout(Duration::from_secs(20)).finish();
    let get = |path: &str| {
        let url = format!("{base}{path}");
        let client = client.clone();
        async move {
            let mut r = client.get(url).send().await.expect("get");
            let status = r.status().as_u16();
            let body = r.body().limit(10 << 20).await.expect("body");
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };

    let (s, b) = get("/livez").await;
    assert_eq!((s, b.trim()), (200, "ok"));

    let (s, b) = get("/api/v1/stats").await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v["stats"]["files"]["failed"], 1);
    assert_eq!(v["stats"]["files"]["closed"], 1);
    assert_eq!(v["stats"]["cleanups"]["pending"], 1);
    assert_eq!(v["stats"]["indexed_block"], 4);

    let (s, b) = get("/api/v1/files?status=failed").await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v["files"][0]["cid"], CID);
    let (s, _) = get("/api/v1/files?status=nope").await;
    assert_eq!(s, 400);
    let (s, _) = get("/api/v1/files?limit=0").await;
    assert_eq!(s, 400);
    let (s, b) = get(&format!("/api/v1/files/{CID}")).await;
    assert_eq!(s, 200);
    let v: serde_json::Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v["owners"][0]["owner"], "alice");
    let (s, _) = get("/api/v1/files/QmMissing").await;
    assert_eq!(s, 404);
    let (s, b) = get("/api/v1/cleanups").await;
    assert_eq!(s, 200);
    assert!(b.contains(CID2));
    let (s, _) = get("/api/v1/pins?limit=5").await;
    assert_eq!(s, 200);

    // Mutating routes: refused without the token, with a wrong one, accepted with it.
    let url = format!("{base}/api/v1/files/{CID}/retry");
    let r = client.post(&url).send().await.expect("post");
    assert_eq!(r.status().as_u16(), 401);
    let r = client
        .post(&url)
        .insert_header(("Authorization", "Bearer wrong"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
    let r = client
        .post(format!("{base}/api/v1/picking/pause"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
    let r = client
        .post(&url)
        .insert_header(("Authorization", "Bearer s3cret"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    let (_, b) = get(&format!("/api/v1/files/{CID}")).await;
    let v: serde_json::Value = serde_json::from_str(&b).expect("json");
    assert_eq!(v["file"]["status"], "new");
    let r = client
        .post(format!("{base}/api/v1/retry?status=sealed"))
        .insert_header(("Authorization", "Bearer s3cret"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    // Without a running pipeline pause cannot work, and says so.
    let r = client
        .post(format!("{base}/api/v1/picking/pause"))
        .insert_header(("Authorization", "Bearer s3cret"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 503);

    let (s, m) = get("/metrics").await;
    assert_eq!(s, 200);
    assert!(m.contains("smanager_files{status=\"new\"} 1"), "{m}");
    assert!(m.contains("smanager_files{status=\"closed\"} 1"), "{m}");
    assert!(m.contains("smanager_indexer_block 4"), "{m}");
    assert!(m.contains("smanager_build_info{"), "{m}");
    assert!(!m.contains(CID), "no CID labels");

    let (s, html) = get("/").await;
    assert_eq!(s, 200);
    assert!(html.contains("/api/v1/stats"));

    // `smanager healthcheck`, as the compose healthcheck runs it.
    let addr = server.addr.to_string();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_smanager"))
        .args(["healthcheck"])
        .env("SMANAGER__ADMIN__BIND", &addr)
        .env("SMANAGER__DATABASE__URL", &t.url)
        .output()
        .await
        .expect("healthcheck");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.handle.stop(true).await;
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_smanager"))
        .args(["healthcheck"])
        .env("SMANAGER__ADMIN__BIND", &addr)
        .output()
        .await
        .expect("healthcheck");
    assert_eq!(out.status.code(), Some(1), "no server, unhealthy");
}

#[actix_rt::test]
async fn mutating_routes_are_disabled_without_a_configured_token() {
    let t = TestDb::migrated();
    seed(&t);
    let mut settings = t.app_settings();
    settings.admin.bind = "127.0.0.1:0".into();
    let server = smanager::http::start(&settings, t.db(), None).expect("start");
    let client = awc::Client::default();
    let r = client
        .post(format!("http://{}/api/v1/files/{CID}/retry", server.addr))
        .insert_header(("Authorization", "Bearer "))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
    server.handle.stop(true).await;
}
