//! A simulated Crust IPFS speaking the Kubo RPC subset a manager uses. Like Crust's go-ipfs fork, `pin/add` of a new
//! CID drives the sWorker: `seal_start` → `seal` for every block in walk order → `seal_end`, so a successful pin means
//! a sealed file; any sWorker refusal fails the pin with `Seal response error code is: N`, and a failed or cancelled
//! walk still calls `seal_end` to discard the partial seal. Content comes from the [`ContentStore`] at a configurable
//! transfer rate; unknown or unavailable CIDs stall until `timeout=` or the client goes away.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::content::{ContentStore, FileMeta};

/// Runtime fault switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpfsFault {
    /// Behaves normally.
    None,
    /// Every answer is a 500.
    ErrorAnswers,
    /// Every answer is delayed.
    Slow(Duration),
}

/// Tunables.
#[derive(Debug, Clone)]
pub struct IpfsConfig {
    /// Bytes per second fetched "from the network".
    pub transfer_rate: u64,
}

impl Default for IpfsConfig {
    fn default() -> Self {
        IpfsConfig {
            transfer_rate: 64 * 1024 * 1024,
        }
    }
}

/// Counters, for tests and summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IpfsStats {
    pub pin_requests: u64,
    pub pins_ok: u64,
    pub pins_failed: u64,
    pub pins_cancelled: u64,
    pub in_flight: u64,
    /// Most pins of one CID ever running at the same time (1 when nothing is pinned twice at once).
    pub max_concurrent_same_cid: u64,
    pub gc_runs: u64,
}

struct State {
    pinned: BTreeSet<String>,
    garbage: u64,
    fault: IpfsFault,
    cfg: IpfsConfig,
    stats: IpfsStats,
    running: HashMap<String, u64>,
}

struct Inner {
    state: Mutex<State>,
    content: ContentStore,
    sworker: String,
    addr: SocketAddr,
    server: Mutex<Option<ServerHandle>>,
}

/// Handle to a running simulator (cheap to clone).
#[derive(Clone)]
pub struct IpfsSim {
    inner: Arc<Inner>,
}

fn err(status: u16, code: i64, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .json(json!({"Message": message.into(), "Code": code, "Type": "error"}))
}

/// Go's `time.ParseDuration` for the forms clients send (`90s`, `10m`, `1h2m3s`, `500ms`).
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if (c == 'm' || c == 'u' || c == 'n') && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let v: f64 = num.parse().ok()?;
        num.clear();
        total += v * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        any = true;
    }
    (any && num.is_empty()).then(|| Duration::from_secs_f64(total))
}

impl IpfsSim {
    /// Binds `addr` (port 0 = any) and serves in the current actix system; seals into the sWorker at `sworker_url`.
    pub fn start(
        addr: SocketAddr,
        cfg: IpfsConfig,
        content: ContentStore,
        sworker_url: &str,
    ) -> std::io::Result<IpfsSim> {
        let state = Mutex::new(State {
            pinned: BTreeSet::new(),
            garbage: 0,
            fault: IpfsFault::None,
            cfg,
            stats: IpfsStats::default(),
            running: HashMap::new(),
        });
        let listener = std::net::TcpListener::bind(addr)?;
        let bound = listener.local_addr()?;
        let sim = IpfsSim {
            inner: Arc::new(Inner {
                state,
                content,
                sworker: format!("{}/api/v0", sworker_url.trim_end_matches('/')),
                addr: bound,
                server: Mutex::new(None),
            }),
        };
        let s2 = sim.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(s2.clone()))
                .default_service(web::to(handle))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .listen(listener)?
        .run();
        if let Ok(mut h) = sim.inner.server.lock() {
            *h = Some(server.handle());
        }
        actix_rt::spawn(server);
        Ok(sim)
    }

    /// `http://127.0.0.1:PORT` (clients append `/api/v0`).
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        self.inner.state.lock().ok().map(|mut s| f(&mut s))
    }

    /// Switches a fault on or off at runtime.
    pub fn set_fault(&self, fault: IpfsFault) {
        self.with(|s| s.fault = fault);
    }

    /// Changes how fast content is "fetched"; applies to pins started from now on.
    pub fn set_transfer_rate(&self, bytes_per_sec: u64) {
        self.with(|s| s.cfg.transfer_rate = bytes_per_sec.max(1));
    }

    /// CIDs currently pinned.
    pub fn pinned(&self) -> BTreeSet<String> {
        self.with(|s| s.pinned.clone()).unwrap_or_default()
    }

    /// A copy of the counters.
    pub fn stats(&self) -> IpfsStats {
        self.with(|s| s.stats.clone()).unwrap_or_default()
    }

    /// Stops the server at once; dropping the open connections cancels their pins.
    pub async fn stop(&self) {
        let handle = self.inner.server.lock().ok().and_then(|mut s| s.take());
        if let Some(h) = handle {
            h.stop(false).await;
        }
    }
}

async fn handle(req: HttpRequest, sim: web::Data<IpfsSim>) -> HttpResponse {
    if req.method() != Method::POST {
        return HttpResponse::MethodNotAllowed().body("405 - Method Not Allowed\n");
    }
    if req.headers().contains_key("origin") {
        return HttpResponse::Forbidden().body("403 - Forbidden\n");
    }
    let fault = sim.with(|s| s.fault).unwrap_or(IpfsFault::None);
    if let IpfsFault::Slow(d) = fault {
        actix_rt::time::sleep(d).await;
    }
    if fault == IpfsFault::ErrorAnswers {
        return err(500, 0, "simulated failure");
    }
    let q: HashMap<String, String> = web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default();
    let Some(cmd) = req.path().strip_prefix("/api/v0/") else {
        return HttpResponse::NotFound().body("404 page not found\n");
    };
    match cmd {
        "version" => HttpResponse::Ok().json(
            json!({"Version": "0.8.0", "Commit": "crust", "Repo": "10", "System": "amd64/linux", "Golang": "go1.15.5"}),
        ),
        "id" => HttpResponse::Ok().json(json!({
            "ID": "12D3KooWDevnetCrustIpfsSimulator", "PublicKey": "", "Addresses": [],
            "AgentVersion": "go-ipfs/0.8.0/crust", "ProtocolVersion": "ipfs/0.1.0", "Protocols": []})),
        "pin/add" => pin_add(sim.into_inner(), q).await,
        "pin/rm" => match q.get("arg") {
            None => err(400, 1, "argument \"ipfs-path\" is required"),
            Some(cid) => {
                let removed = sim
                    .with(|s| {
                        let r = s.pinned.remove(cid);
                        if r {
                            s.garbage += 1;
                        }
                        r
                    })
                    .unwrap_or(false);
                if removed {
                    HttpResponse::Ok().json(json!({"Pins": [cid]}))
                } else {
                    err(500, 0, "not pinned or pinned indirectly")
                }
            }
        },
        "pin/ls" => {
            let pinned = sim.pinned();
            match q.get("arg") {
                Some(cid) if !pinned.contains(cid) => err(500, 0, format!("path '{cid}' is not pinned")),
                Some(cid) => HttpResponse::Ok().json(json!({"Keys": {cid: {"Type": "recursive"}}})),
                None => {
                    let keys: serde_json::Map<String, Value> =
                        pinned.into_iter().map(|c| (c, json!({"Type": "recursive"}))).collect();
                    HttpResponse::Ok().json(json!({ "Keys": keys }))
                }
            }
        }
        "repo/stat" => {
            let (objects, size) = sim
                .with(|s| {
                    let blocks: u64 = s
                        .pinned
                        .iter()
                        .filter_map(|c| sim.inner.content.get(c))
                        .map(|f| f.block_count())
                        .sum();
                    // Sealed payloads live in the sWorker; IPFS keeps pointer records only.
                    (blocks + s.garbage, (blocks + s.garbage) * 96)
                })
                .unwrap_or((0, 0));
            HttpResponse::Ok().json(
                json!({"RepoSize": size, "StorageMax": 250_000_000_000u64, "NumObjects": objects,
                "RepoPath": "/data/ipfs", "Version": "fs-repo@10"}),
            )
        }
        "repo/gc" => {
            let removed = sim
                .with(|s| {
                    s.stats.gc_runs += 1;
                    std::mem::take(&mut s.garbage)
                })
                .unwrap_or(0);
            let body: String = (0..removed)
                .map(|i| format!("{{\"Key\":{{\"/\":\"bafkgarbage{i}\"}}}}\n"))
                .collect();
            HttpResponse::Ok()
                .insert_header(("X-Chunked-Output", "1"))
                .content_type("application/json")
                .body(body)
        }
        "files/stat" | "dag/stat" => {
            let arg = q.get("arg").cloned().unwrap_or_default();
            let cid = arg.trim_start_matches("/ipfs/").to_string();
            match sim.inner.content.get(&cid).filter(|f| f.available) {
                None => err(500, 0, "context deadline exceeded"),
                Some(f) if cmd == "dag/stat" => {
                    HttpResponse::Ok().json(json!({"Size": f.size, "NumBlocks": f.block_count()}))
                }
                Some(f) => HttpResponse::Ok().json(
                    json!({"Hash": f.cid, "Size": f.size, "CumulativeSize": f.size + f.root.len() as u64,
                    "Blocks": f.leaves, "Type": "file"}),
                ),
            }
        }
        _ => HttpResponse::NotFound().body("404 page not found\n"),
    }
}

/// Sets the flag when the HTTP response (and so the client connection) is dropped.
struct CancelOnDrop(Arc<AtomicBool>);
impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

async fn pin_add(sim: Arc<IpfsSim>, q: HashMap<String, String>) -> HttpResponse {
    let Some(arg) = q.get("arg").cloned() else {
        return err(400, 1, "argument \"ipfs-path\" is required");
    };
    let cid_text = arg.trim_start_matches("/ipfs/").to_string();
    let Ok(parsed) = cid::Cid::try_from(cid_text.as_str()) else {
        return err(400, 1, format!("invalid path \"{arg}\": invalid cid"));
    };
    let cid = parsed.to_string();
    let timeout = match q.get("timeout") {
        Some(t) => match parse_go_duration(t) {
            Some(d) => d,
            None => return err(400, 1, format!("invalid timeout \"{t}\"")),
        },
        None => Duration::from_secs(365 * 24 * 3600),
    };
    let progress = q.get("progress").map(String::as_str) == Some("true");
    sim.with(|s| s.stats.pin_requests += 1);
    if sim.pinned().contains(&cid) {
        return HttpResponse::Ok().json(json!({"Pins": [cid]}));
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let nodes = Arc::new(AtomicU64::new(0));
    let mut task = actix_rt::spawn(run_pin(
        sim.clone(),
        cid.clone(),
        timeout,
        cancel.clone(),
        nodes.clone(),
    ));
    let guard = CancelOnDrop(cancel);
    // go-ipfs-cmds sends the headers with its first output: what ends before the first progress line is an ordinary
    // answer (an error is a 500 with the error object). After that, an error goes into the `X-Stream-Error`
    // trailer, announced by `Trailer:`; actix-web cannot write trailers, so the body just ends, which is exactly
    // what a client that drops trailers (awc) sees from Kubo.
    if progress {
        match actix_rt::time::timeout(Duration::from_millis(500), &mut task).await {
            Ok(Ok(Ok(()))) => {
                return HttpResponse::Ok()
                    .content_type("application/json")
                    .insert_header(("X-Chunked-Output", "1"))
                    .insert_header(("Trailer", "X-Stream-Error"))
                    .body(format!("{}\n", json!({"Pins": [cid]})))
            }
            Ok(Ok(Err(e))) => return err(500, 0, e),
            Ok(Err(e)) => return err(500, 0, e.to_string()),
            Err(_) => {}
        }
    }
    let state = (Some(task), guard, nodes, cid, progress, Instant::now());
    let body = futures_util::stream::unfold(state, |(task, guard, nodes, cid, progress, mut last)| async move {
        let mut task = task?;
        loop {
            let tick = actix_rt::time::sleep(Duration::from_millis(100));
            tokio::pin!(tick);
            tokio::select! {
                done = &mut task => {
                    let line = match done {
                        Ok(Ok(())) => json!({"Pins": [cid]}),
                        // Streaming already: the error belongs in the X-Stream-Error trailer; end the body.
                        Ok(Err(_)) | Err(_) if progress => return None,
                        Ok(Err(e)) => json!({"Message": e, "Code": 0, "Type": "error"}),
                        Err(e) => json!({"Message": e.to_string(), "Code": 0, "Type": "error"}),
                    };
                    let bytes = web::Bytes::from(format!("{line}\n"));
                    return Some((Ok::<_, actix_web::Error>(bytes), (None, guard, nodes, cid, progress, last)));
                }
                _ = &mut tick => {
                    if progress && last.elapsed() >= Duration::from_millis(500) {
                        last = Instant::now();
                        let line = json!({"Pins": null, "Progress": nodes.load(Ordering::SeqCst)});
                        let bytes = web::Bytes::from(format!("{line}\n"));
                        return Some((Ok(bytes), (Some(task), guard, nodes, cid, progress, last)));
                    }
                }
            }
        }
    });
    let mut resp = HttpResponse::Ok();
    resp.content_type("application/json");
    if progress {
        resp.insert_header(("X-Chunked-Output", "1"));
        resp.insert_header(("Trailer", "X-Stream-Error"));
    }
    resp.streaming(body.boxed_local())
}

async fn post_json(url: &str, body: Value) -> Result<(u16, Value), String> {
    let mut r = awc::Client::default()
        .post(url)
        .timeout(Duration::from_secs(60))
        .send_json(&body)
        .await
        .map_err(|e| format!("sWorker unreachable: {e}"))?;
    let b = r.body().limit(1 << 20).await.map_err(|e| e.to_string())?;
    Ok((r.status().as_u16(), serde_json::from_slice(&b).unwrap_or(Value::Null)))
}

async fn run_pin(
    sim: Arc<IpfsSim>,
    cid: String,
    timeout: Duration,
    cancel: Arc<AtomicBool>,
    nodes: Arc<AtomicU64>,
) -> Result<(), String> {
    sim.with(|s| {
        s.stats.in_flight += 1;
        let n = s.running.entry(cid.clone()).or_insert(0);
        *n += 1;
        let n = *n;
        s.stats.max_concurrent_same_cid = s.stats.max_concurrent_same_cid.max(n);
    });
    let r = pin_walk(&sim, &cid, timeout, &cancel, &nodes).await;
    sim.with(|s| {
        s.stats.in_flight = s.stats.in_flight.saturating_sub(1);
        if let Some(n) = s.running.get_mut(&cid) {
            *n -= 1;
            if *n == 0 {
                s.running.remove(&cid);
            }
        }
        match &r {
            Ok(()) => {
                s.stats.pins_ok += 1;
                s.pinned.insert(cid.clone());
            }
            Err(_) if cancel.load(Ordering::SeqCst) => s.stats.pins_cancelled += 1,
            Err(_) => s.stats.pins_failed += 1,
        }
    });
    r
}

async fn pin_walk(
    sim: &IpfsSim,
    cid: &str,
    timeout: Duration,
    cancel: &AtomicBool,
    nodes: &AtomicU64,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    // Wait for the content to be findable (never, for unavailable CIDs).
    let file: FileMeta = loop {
        if cancel.load(Ordering::SeqCst) {
            return Err("context canceled".into());
        }
        if Instant::now() >= deadline {
            return Err("context deadline exceeded".into());
        }
        if let Some(f) = sim.inner.content.get(cid).filter(|f| f.available) {
            break f;
        }
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    };
    let sworker = sim.inner.sworker.clone();
    let b58 = cid::Cid::try_from(cid)
        .map(|c| bs58::encode(c.hash().to_bytes()).into_string())
        .map_err(|e| e.to_string())?;
    let (status, v) = post_json(
        &format!("{sworker}/storage/seal_start"),
        json!({"cid": cid, "cid_b58": b58}),
    )
    .await?;
    let code = v.get("status_code").and_then(Value::as_i64).unwrap_or(-1);
    if status != 200 || code != 0 {
        return Err(format!(
            "Start Seal error code is: {}",
            if code > 0 { code } else { i64::from(status) }
        ));
    }
    let rate = sim.with(|s| s.cfg.transfer_rate).unwrap_or(u64::MAX).max(1);
    let mut failure = None;
    for i in 0..file.block_count() {
        if cancel.load(Ordering::SeqCst) {
            failure = Some("context canceled".to_string());
            break;
        }
        if Instant::now() >= deadline {
            failure = Some("context deadline exceeded".to_string());
            break;
        }
        let Some(block) = file.block(i) else { break };
        // "Fetching" the block; a client that goes away cancels it, as Kubo's request context does.
        let fetched = Instant::now() + Duration::from_secs_f64(block.len() as f64 / rate as f64);
        while Instant::now() < fetched && !cancel.load(Ordering::SeqCst) && Instant::now() < deadline {
            let left = fetched.saturating_duration_since(Instant::now());
            actix_rt::time::sleep(left.min(Duration::from_millis(100))).await;
        }
        if cancel.load(Ordering::SeqCst) || Instant::now() >= deadline {
            continue;
        }
        let r = awc::Client::default()
            .post(format!("{sworker}/storage/seal?cid={cid}&new_block=false"))
            .timeout(Duration::from_secs(60))
            .send_body(block)
            .await;
        let (status, v) = match r {
            Ok(mut r) => {
                let b = r.body().limit(1 << 20).await.unwrap_or_default();
                (
                    r.status().as_u16(),
                    serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null),
                )
            }
            Err(e) => {
                failure = Some(format!("sWorker unreachable: {e}"));
                break;
            }
        };
        let code = v.get("status_code").and_then(Value::as_i64).unwrap_or(-1);
        if status != 200 || code != 0 {
            failure = Some(format!(
                "Seal response error code is: {}",
                if code > 0 { code } else { i64::from(status) }
            ));
            break;
        }
        nodes.fetch_add(1, Ordering::SeqCst);
    }
    // seal_end either completes the file or discards the partial seal.
    let end = post_json(&format!("{sworker}/storage/seal_end"), json!({"cid": cid})).await;
    if let Some(f) = failure {
        return Err(f);
    }
    match end {
        Ok((200, _)) => Ok(()),
        Ok((_, v)) => Err(format!(
            "Seal end error code is: {}",
            v.get("status_code").and_then(Value::as_i64).unwrap_or(-1)
        )),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("5x"), None);
    }
}
