//! Contract tests of the sWorker simulator: one per documented route, status code and quirk (sworker-ipfs.md §1).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};
use smanager::devnet::content::ContentStore;
use smanager::devnet::sworker::{Fault, SworkerConfig, SworkerSim, MAX_PENDING};

fn any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

struct Api {
    base: String,
    client: awc::Client,
}

impl Api {
    fn new(sim: &SworkerSim) -> Api {
        Api {
            base: format!("{}/api/v0", sim.url()),
            client: awc::Client::builder().timeout(Duration::from_secs(30)).finish(),
        }
    }
    async fn call(&self, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, String, String) {
        let url = format!("{}/{path}", self.base);
        let req = match method {
            "GET" => self.client.get(url),
            "POST" => self.client.post(url),
            "HEAD" => self.client.head(url),
            m => self
                .client
                .request(awc::http::Method::from_bytes(m.as_bytes()).expect("method"), url),
        };
        let mut r = match body {
            Some(b) => req.send_body(b).await,
            None => req.send().await,
        }
        .expect("request");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let b = r.body().limit(1 << 24).await.expect("body");
        (r.status().as_u16(), ct, String::from_utf8_lossy(&b).into_owned())
    }
    async fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let (s, _, b) = self.call(method, path, body.map(|v| v.to_string().into_bytes())).await;
        (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
    }
}

async fn seal_file(api: &Api, content: &ContentStore, seed: u64, size: u64) -> String {
    let f = content.build(seed, size, false, true);
    let (s, v) = api
        .json(
            "POST",
            "storage/seal_start",
            Some(json!({"cid": f.cid, "cid_b58": f.cid})),
        )
        .await;
    assert_eq!((s, v["status_code"].as_i64()), (200, Some(0)), "{v}");
    for i in 0..f.block_count() {
        let block = f.block(i).expect("block");
        let (s, v) = api
            .json_bytes(&format!("storage/seal?cid={}&new_block=false", f.cid), block)
            .await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["status_code"], 0);
        assert!(v["path"].as_str().is_some_and(|p| p.contains(&f.cid)));
    }
    let (s, v) = api.json("POST", "storage/seal_end", Some(json!({"cid": f.cid}))).await;
    assert_eq!((s, v["status_code"].as_i64()), (200, Some(0)), "{v}");
    f.cid
}

impl Api {
    async fn json_bytes(&self, path: &str, body: Vec<u8>) -> (u16, Value) {
        let (s, _, b) = self.call("POST", path, Some(body)).await;
        (s, serde_json::from_str(&b).unwrap_or(Value::String(b)))
    }
}

#[actix_rt::test]
async fn routes_shapes_and_quirks() {
    let sim = SworkerSim::start(any(), SworkerConfig::default()).expect("start");
    let api = Api::new(&sim);
    let content = ContentStore::new();

    // /workload: GiB integers, sorted keys, ` : ` separators, application/text.
    let (s, ct, body) = api.call("GET", "workload", None).await;
    assert_eq!(s, 200);
    assert_eq!(ct, "application/text");
    assert!(body.contains("\"files\" : {"), "{body}");
    let v: Value = serde_json::from_str(&body).expect("JSON despite the content type");
    assert_eq!(v["srd"]["srd_complete"], 4096);
    assert_eq!(v["srd"]["disk_available"], 1024);
    assert!(
        v["srd"]["srd_detail"]["/opt/crust/disks/1"]["volumn"].is_number(),
        "the `volumn` spelling"
    );
    let keys: Vec<&String> = v["srd"].as_object().expect("srd").keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    // seal flow → valid.
    let cid = seal_file(&api, &content, 1, 700_000).await;
    let (s, v) = api.json("GET", &format!("file/info?cid={cid}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(v[&cid]["type"], "valid");
    assert!(v[&cid]["size"].as_u64() > Some(700_000));
    assert!(v[&cid]["c_block_num"].is_number());
    let (s, v) = api.json("GET", "file/info_by_type?type=valid", None).await;
    assert_eq!(s, 200);
    assert!(v[&cid].is_object() && v[&cid].get("type").is_none());
    let (_, v) = api.json("GET", "file/info_by_type?type=all", None).await;
    assert!(v["valid"][&cid].is_object() && v.get("pending").is_none(), "{v}");

    // seal_start on a sealed file: 200 with 8012; on a pending one: 200 with 8013.
    let (s, v) = api
        .json("POST", "storage/seal_start", Some(json!({"cid": cid, "cid_b58": cid})))
        .await;
    assert_eq!((s, v["status_code"].as_i64()), (200, Some(8012)));
    let f = content.build(2, 300_000, false, true);
    api.json(
        "POST",
        "storage/seal_start",
        Some(json!({"cid": f.cid, "cid_b58": f.cid})),
    )
    .await;
    let (s, v) = api
        .json(
            "POST",
            "storage/seal_start",
            Some(json!({"cid": f.cid, "cid_b58": f.cid})),
        )
        .await;
    assert_eq!((s, v["status_code"].as_i64()), (200, Some(8013)));
    // Pending: sealed_size is a string, used_time a duration.
    api.json_bytes(
        &format!("storage/seal?cid={}&new_block=false", f.cid),
        f.block(0).expect("root"),
    )
    .await;
    let (_, v) = api.json("GET", "file/info_by_type?type=pending", None).await;
    assert!(v[&f.cid]["sealed_size"].is_string(), "{v}");
    assert!(v[&f.cid]["used_time"].as_str().is_some_and(|t| t.ends_with('s')));
    let (_, v) = api.json("GET", &format!("file/info?cid={}", f.cid), None).await;
    assert_eq!(v[&f.cid]["type"], "pending");
    // seal_end with blocks missing: 500/8017, and the pending entry is gone (cancel).
    let (s, v) = api.json("POST", "storage/seal_end", Some(json!({"cid": f.cid}))).await;
    assert_eq!((s, v["status_code"].as_i64()), (500, Some(8017)));
    let (s, v) = api.json("POST", "storage/seal_end", Some(json!({"cid": f.cid}))).await;
    assert_eq!((s, v["status_code"].as_i64()), (404, Some(8005)));
    // seal without a pending entry: 500/8005.
    let (s, v) = api
        .json_bytes(&format!("storage/seal?cid={}&new_block=false", f.cid), vec![1, 2, 3])
        .await;
    assert_eq!((s, v["status_code"].as_i64()), (500, Some(8005)));
    // Bad parameters: HTTP 400 with status_code 0 on seal_start.
    let (s, v) = api
        .json("POST", "storage/seal_start", Some(json!({"cid": f.cid})))
        .await;
    assert_eq!((s, v["status_code"].as_i64()), (400, Some(0)));

    // file/info: 404 unknown, 400 missing cid; POST is not a route (400 Unknown request!).
    let (s, v) = api.json("GET", "file/info?cid=QmNope", None).await;
    assert_eq!((s, v["message"].as_str()), (404, Some("File not found.")));
    let (s, _) = api.json("GET", "file/info", None).await;
    assert_eq!(s, 400);
    let (s, _, b) = api.call("POST", "file/info?cid=x", None).await;
    assert_eq!((s, b.as_str()), (400, "Unknown request!"));
    let (s, _, b) = api.call("GET", "nope", None).await;
    assert_eq!((s, b.as_str()), (400, "Unknown request target"));
    let (s, _) = api.json("GET", "file/info_by_type?type=odd", None).await;
    assert_eq!(s, 400);
    // Outside the base path: 400 Illegal request-target; other methods: 400 Unknown HTTP-method; HEAD: 200.
    let r = api
        .client
        .get(format!("{}/other", sim.url()))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 400);
    let (s, _, b) = api.call("PUT", "workload", None).await;
    assert_eq!((s, b.as_str()), (400, "Unknown HTTP-method"));
    let (s, _, _) = api.call("HEAD", "anything", None).await;
    assert_eq!(s, 200);
    // No URL-decoding of the query.
    let (s, _) = api.json("GET", &format!("file/info?cid={}%20", cid), None).await;
    assert_eq!(s, 404);

    // delete: 200, then 404; a deleted file answers seal_start with 400/8014 for a while.
    let (s, v) = api.json("POST", "storage/delete", Some(json!({"cid": cid}))).await;
    assert_eq!((s, v["status_code"].as_i64()), (200, Some(200)));
    let (s, v) = api
        .json("POST", "storage/seal_start", Some(json!({"cid": cid, "cid_b58": cid})))
        .await;
    assert_eq!((s, v["status_code"].as_i64()), (400, Some(8014)));
    let (s, _) = api.json("POST", "storage/delete", Some(json!({"cid": cid}))).await;
    assert_eq!(s, 404);
    let (s, _) = api.json("POST", "storage/delete", Some(json!({}))).await;
    assert_eq!(s, 400);

    // id_info, srd/change, debug, stop (HTTP 400 with status_code 200), unseal of "empty".
    let (s, v) = api.json("GET", "enclave/id_info", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["mrenclave"].as_str().map(str::len), Some(64));
    let (s, _) = api.json("POST", "srd/change", Some(json!({"change": 0}))).await;
    assert_eq!(s, 400);
    let (s, v) = api.json("POST", "srd/change", Some(json!({"change": -10}))).await;
    assert_eq!(s, 200, "{v}");
    let (s, _) = api.json("POST", "debug", Some(json!({"debug": "yes"}))).await;
    assert_eq!(s, 400);
    let (s, _) = api.json("POST", "debug", Some(json!({"debug": true}))).await;
    assert_eq!(s, 200);
    let (s, v) = api.json("GET", "stop", None).await;
    assert_eq!((s, v["status_code"].as_i64()), (400, Some(200)));
    let (s, _, b) = api
        .call(
            "POST",
            "storage/unseal",
            Some(json!({"path": "empty"}).to_string().into_bytes()),
        )
        .await;
    assert_eq!((s, b.len()), (200, 0));
    sim.stop().await;
}

#[actix_rt::test]
async fn limits_disk_model_restart_and_faults() {
    let sim = SworkerSim::start(any(), SworkerConfig::default()).expect("start");
    let api = Api::new(&sim);
    // The 500-pending limit.
    for i in 0..MAX_PENDING {
        let cid = format!("QmPending{i}");
        let (s, v) = api
            .json("POST", "storage/seal_start", Some(json!({"cid": cid, "cid_b58": cid})))
            .await;
        assert_eq!((s, v["status_code"].as_i64()), (200, Some(0)));
    }
    let (s, v) = api
        .json(
            "POST",
            "storage/seal_start",
            Some(json!({"cid": "QmOneTooMany", "cid_b58": "x"})),
        )
        .await;
    assert_eq!((s, v["status_code"].as_i64()), (500, Some(4020)));
    // Pending seals are lost on restart.
    sim.restart();
    assert_eq!(sim.stats().pending, 0);

    // Disk full: 8016 aborts the pending file.
    sim.set_capacity(1000, 0);
    let content = ContentStore::new();
    let f = content.build(3, 200_000, false, true);
    api.json(
        "POST",
        "storage/seal_start",
        Some(json!({"cid": f.cid, "cid_b58": f.cid})),
    )
    .await;
    let (s, v) = api
        .json_bytes(
            &format!("storage/seal?cid={}&new_block=false", f.cid),
            f.block(1).expect("leaf"),
        )
        .await;
    assert_eq!((s, v["status_code"].as_i64()), (500, Some(8016)));
    assert!(sim.pending_cids().is_empty(), "an error aborts the pending file");
    let (_, v) = api.json("GET", "workload", None).await;
    assert_eq!(v["srd"]["disk_available"], 0);

    // Upgrade gate: 501 on seal_start/delete/srd_change only; exit: 501 everywhere.
    sim.set_fault(Fault::Upgrade).await.expect("fault");
    let (s, v) = api.json("POST", "storage/delete", Some(json!({"cid": "x"}))).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (501, Some("Current service is closed due to upgrade!"))
    );
    let (s, _) = api.json("GET", "workload", None).await;
    assert_eq!(s, 200);
    sim.set_fault(Fault::UpgradeExit).await.expect("fault");
    let (s, v) = api.json("GET", "workload", None).await;
    assert_eq!(
        (s, v["message"].as_str()),
        (501, Some("No service will be provided because of upgrade!"))
    );
    sim.set_fault(Fault::ErrorAnswers).await.expect("fault");
    let (s, _) = api.json("GET", "workload", None).await;
    assert_eq!(s, 500);
    // Down: connections are refused; back up on the same port.
    sim.set_fault(Fault::Down).await.expect("fault");
    let r = api.client.get(format!("{}/workload", api.base)).send().await;
    assert!(r.is_err(), "down means unreachable");
    sim.set_fault(Fault::None).await.expect("fault");
    let (s, _) = api.json("GET", "workload", None).await;
    assert_eq!(s, 200);
    sim.set_fault(Fault::Slow(Duration::from_millis(300)))
        .await
        .expect("fault");
    let t = std::time::Instant::now();
    api.json("GET", "workload", None).await;
    assert!(t.elapsed() >= Duration::from_millis(300));
    sim.stop().await;
}
