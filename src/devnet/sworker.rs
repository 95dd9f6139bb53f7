//! A simulated sWorker v1.1.1 (`/api/v0`), faithful to the real handler's routes, shapes and quirks: JSON bodies
//! served as `application/text`, pretty-printed with sorted keys and ` : ` separators, `sealed_size` as a string,
//! GiB units in `/workload`, crust status codes in `status_code`, the 500-pending limit, `seal_end` as cancel,
//! `storage/delete` unpinning in IPFS, pending seals lost on restart, a disk model, and fault switches.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::{Method, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::{json, Value};

use super::content::{cid_v0_of, dag_pb_links};

const GIB: u64 = 1 << 30;
/// More pending seals than this are refused with 4020.
pub const MAX_PENDING: usize = 500;

/// Sizes of the simulated machine.
#[derive(Debug, Clone)]
pub struct SworkerConfig {
    /// Bytes the data disks can hold for sealed files.
    pub capacity_bytes: u64,
    /// SRD already done (GiB); counts as reclaimable free space for the manager.
    pub srd_gib: u64,
    /// Free space of the system disk (GiB).
    pub sys_free_gib: u64,
    /// How long a deleted file answers seal_start with 8014 (deleted, not yet reported).
    pub deleted_window: Duration,
    /// IPFS RPC base (e.g. `http://127.0.0.1:5001`) for `pin/rm` on delete.
    pub ipfs_url: Option<String>,
}

impl Default for SworkerConfig {
    fn default() -> Self {
        SworkerConfig {
            capacity_bytes: 1 << 40,
            srd_gib: 4096,
            sys_free_gib: 200,
            deleted_window: Duration::from_secs(2),
            ipfs_url: None,
        }
    }
}

/// Runtime fault switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Behaves normally.
    None,
    /// The listener is closed: connections are refused.
    Down,
    /// Every answer is delayed.
    Slow(Duration),
    /// Every answer is a 500.
    ErrorAnswers,
    /// An A/B upgrade is running: seal_start, delete and srd/change answer 501.
    Upgrade,
    /// The old instance is exiting: everything answers 501.
    UpgradeExit,
}

#[derive(Debug, Clone)]
struct Sealed {
    size: u64,
    sealed: u64,
    block: u64,
    lost: bool,
}

#[derive(Debug)]
struct Pending {
    started: Instant,
    /// CIDv0 of blocks still expected → how many times.
    expected: HashMap<String, u32>,
    sealed_bytes: u64,
    size: u64,
}

/// Counters, for tests and summaries.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SworkerStats {
    pub valid: usize,
    pub pending: usize,
    pub lost: usize,
    pub used_bytes: u64,
    pub seal_starts: u64,
    pub seal_blocks: u64,
    pub seal_ends: u64,
    pub deletes: u64,
    pub deleted_ok: u64,
    /// `file/info` requests answered.
    pub file_infos: u64,
}

struct State {
    cfg: SworkerConfig,
    fault: Fault,
    valid: HashMap<String, Sealed>,
    pending: HashMap<String, Pending>,
    deleted: HashMap<String, Instant>,
    used: u64,
    debug: bool,
    stats: SworkerStats,
    chain_block: u64,
    /// CIDs whose next `seal_end` is acknowledged but not kept (a restart between the answer and the write).
    forget: HashSet<String>,
}

struct Inner {
    state: Mutex<State>,
    addr: Mutex<SocketAddr>,
    server: Mutex<Option<ServerHandle>>,
}

/// Handle to a running simulator (cheap to clone).
#[derive(Clone)]
pub struct SworkerSim {
    inner: Arc<Inner>,
}

/// Renders JSON the way the sWorker's library does: 2-space indent, sorted keys, ` : `.
pub fn sworker_json(v: &Value) -> String {
    fn go(v: &Value, indent: usize, out: &mut String) {
        let pad = "  ".repeat(indent + 1);
        match v {
            Value::Object(m) if !m.is_empty() => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push_str("{\n");
                for (i, k) in keys.iter().enumerate() {
                    out.push_str(&pad);
                    out.push_str(&Value::String((*k).clone()).to_string());
                    out.push_str(" : ");
                    go(&m[*k], indent + 1, out);
                    if i + 1 < keys.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str(&"  ".repeat(indent));
                out.push('}');
            }
            Value::Array(a) if !a.is_empty() => {
                out.push_str("[\n");
                for (i, x) in a.iter().enumerate() {
                    out.push_str(&pad);
                    go(x, indent + 1, out);
                    if i + 1 < a.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                out.push_str(&"  ".repeat(indent));
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    go(v, 0, &mut s);
    s
}

fn answer(status: u16, body: Value) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .content_type("application/text")
        .body(sworker_json(&body))
}

fn msg(status: u16, code: i64, message: impl Into<String>) -> HttpResponse {
    answer(status, json!({"message": message.into(), "status_code": code}))
}

fn text(status: u16, body: &'static str) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST))
        .content_type("text/html")
        .body(body)
}

/// The query split on `&` and `=`, with no URL-decoding (as the real handler does).
fn raw_query(req: &HttpRequest) -> HashMap<String, String> {
    req.query_string()
        .split('&')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn used_time(d: Duration) -> String {
    let mut s = d.as_secs();
    let (days, hours, mins) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60);
    s %= 60;
    let mut out = String::new();
    if days > 0 {
        out.push_str(&format!("{days}d"));
    }
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if mins > 0 {
        out.push_str(&format!("{mins}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

impl SworkerSim {
    /// Binds `addr` (port 0 = any) and serves in the current actix system.
    pub fn start(addr: SocketAddr, cfg: SworkerConfig) -> std::io::Result<SworkerSim> {
        let sim = SworkerSim {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    cfg,
                    fault: Fault::None,
                    valid: HashMap::new(),
                    pending: HashMap::new(),
                    deleted: HashMap::new(),
                    used: 0,
                    debug: false,
                    stats: SworkerStats::default(),
                    chain_block: 1,
                    forget: HashSet::new(),
                }),
                addr: Mutex::new(addr),
                server: Mutex::new(None),
            }),
        };
        sim.listen(addr)?;
        Ok(sim)
    }

    fn listen(&self, addr: SocketAddr) -> std::io::Result<()> {
        let sim = self.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(sim.clone()))
                .app_data(web::PayloadConfig::new(500 * 1024 * 1024))
                .default_service(web::to(handle))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(addr)?;
        let bound = server.addrs().first().copied().unwrap_or(addr);
        let server = server.run();
        if let Ok(mut s) = self.inner.server.lock() {
            *s = Some(server.handle());
        }
        if let Ok(mut a) = self.inner.addr.lock() {
            *a = bound;
        }
        actix_rt::spawn(server);
        Ok(())
    }

    /// `http://127.0.0.1:PORT` (the manager appends `/api/v0`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// The bound address (useful after binding port 0).
    pub fn addr(&self) -> SocketAddr {
        self.inner
            .addr
            .lock()
            .map(|a| *a)
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Option<T> {
        self.inner.state.lock().ok().map(|mut s| f(&mut s))
    }

    /// Where `storage/delete` sends `pin/rm`.
    pub fn set_ipfs_url(&self, url: &str) {
        self.with(|s| s.cfg.ipfs_url = Some(url.to_string()));
    }

    /// Switches a fault on or off; `Down` closes the listener, leaving it reopens on the same port.
    pub async fn set_fault(&self, fault: Fault) -> std::io::Result<()> {
        let prev = self
            .with(|s| std::mem::replace(&mut s.fault, fault))
            .unwrap_or(Fault::None);
        if fault == Fault::Down && prev != Fault::Down {
            let handle = self.inner.server.lock().ok().and_then(|mut s| s.take());
            if let Some(h) = handle {
                h.stop(false).await;
            }
        } else if prev == Fault::Down && fault != Fault::Down {
            let addr = self.addr();
            // The port may take a moment to be free again.
            let mut tries = 0;
            loop {
                match self.listen(addr) {
                    Ok(()) => break,
                    Err(e) if tries < 50 => {
                        tries += 1;
                        log::debug!("sworker sim relisten: {e}");
                        actix_rt::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }

    /// A restart of the sWorker process: pending seals are lost (their partial data discarded).
    pub fn restart(&self) {
        self.with(|s| {
            let lost: u64 = s.pending.values().map(|p| p.sealed_bytes).sum();
            s.used = s.used.saturating_sub(lost);
            s.pending.clear();
        });
    }

    /// Resizes the data disks (bytes), e.g. to fill or free the disk in a test.
    pub fn set_capacity(&self, bytes: u64, srd_gib: u64) {
        self.with(|s| {
            s.cfg.capacity_bytes = bytes;
            s.cfg.srd_gib = srd_gib;
        });
    }

    /// Acknowledges the next `seal_end` of `cid` without keeping the file, as a sWorker that restarts right after
    /// answering: IPFS finishes the pin, yet `file/info` does not know the file.
    pub fn forget_next_seal(&self, cid: &str) {
        self.with(|s| {
            s.forget.insert(cid.to_string());
        });
    }

    /// Marks a valid file lost (a disk failure).
    pub fn lose(&self, cid: &str) {
        self.with(|s| {
            if let Some(f) = s.valid.get_mut(cid) {
                f.lost = true;
            }
        });
    }

    /// Chain height reported as `c_block_num` for new seals.
    pub fn set_chain_block(&self, n: u64) {
        self.with(|s| s.chain_block = n);
    }

    /// A copy of the counters.
    pub fn stats(&self) -> SworkerStats {
        self.with(|s| {
            let mut st = s.stats.clone();
            st.valid = s.valid.values().filter(|f| !f.lost).count();
            st.lost = s.valid.values().filter(|f| f.lost).count();
            st.pending = s.pending.len();
            st.used_bytes = s.used;
            st
        })
        .unwrap_or_default()
    }

    /// CIDs sealed and valid.
    pub fn valid_cids(&self) -> HashSet<String> {
        self.with(|s| {
            s.valid
                .iter()
                .filter(|(_, f)| !f.lost)
                .map(|(c, _)| c.clone())
                .collect()
        })
        .unwrap_or_default()
    }

    /// CIDs being sealed.
    pub fn pending_cids(&self) -> HashSet<String> {
        self.with(|s| s.pending.keys().cloned().collect()).unwrap_or_default()
    }

    /// Stops the server.
    pub async fn stop(&self) {
        let handle = self.inner.server.lock().ok().and_then(|mut s| s.take());
        if let Some(h) = handle {
            h.stop(false).await;
        }
    }
}

async fn handle(req: HttpRequest, body: web::Bytes, sim: web::Data<SworkerSim>) -> HttpResponse {
    let fault = sim.with(|s| s.fault).unwrap_or(Fault::None);
    if let Fault::Slow(d) = fault {
        actix_rt::time::sleep(d).await;
    }
    if fault == Fault::Down {
        // A kept-alive connection can outlive the stopped listener by a few milliseconds (actix-server does
        // not wait for its worker when stopping without grace): never answer on it, so the worker's exit
        // drops the connection and the caller sees it fail, as it would against a dead process.
        std::future::pending::<()>().await;
    }
    let path = req.path().to_string();
    let Some(route) = path.strip_prefix("/api/v0") else {
        return text(400, "Illegal request-target");
    };
    let route = route.trim_start_matches('/').to_string();
    if fault == Fault::UpgradeExit {
        return msg(501, 501, "No service will be provided because of upgrade!");
    }
    if fault == Fault::ErrorAnswers {
        return msg(500, 500, "Unexpected error");
    }
    let method = req.method().clone();
    if method == Method::HEAD {
        return HttpResponse::Ok().finish();
    }
    if fault == Fault::Upgrade && matches!(route.as_str(), "srd/change" | "storage/delete" | "storage/seal_start") {
        return msg(501, 501, "Current service is closed due to upgrade!");
    }
    let q = raw_query(&req);
    let json_body = || serde_json::from_slice::<Value>(&body).ok();
    match (method, route.as_str()) {
        (Method::GET, "workload") => workload(&sim),
        (Method::GET, "file/info") => match q.get("cid") {
            None => msg(400, 400, "Bad parameter! Need a string type parameter:'cid'"),
            Some(cid) => file_info(&sim, cid),
        },
        (Method::GET, "file/info_by_type") => info_by_type(&sim, q.get("type").map(String::as_str)),
        (Method::POST, "storage/seal_start") => seal_start(&sim, json_body()),
        (Method::POST, "storage/seal") => seal(&sim, &q, &body),
        (Method::POST, "storage/seal_end") => seal_end(&sim, json_body()),
        (Method::POST, "storage/unseal") => unseal(json_body()),
        (Method::POST, "storage/delete") => delete(&sim, json_body()).await,
        (Method::GET, "enclave/id_info") => answer(
            200,
            json!({"account": "cTM8suyN19VZb7JEPRNvtezyfpEAJyYxHkk1n5J4XEr6XroRa", "mrenclave": "0".repeat(64),
                   "pub_key": "1".repeat(128), "sworker_version": "1.1.1", "version": "1.1.1"}),
        ),
        (Method::POST, "srd/change") => srd_change(&sim, json_body()),
        (Method::POST, "debug") => match json_body().and_then(|v| v.get("debug").and_then(Value::as_bool)) {
            Some(d) => {
                sim.with(|s| s.debug = d);
                msg(200, 200, "Set debug flag successfully!")
            }
            None => msg(400, 400, "Bad parameter! Need a boolean type parameter:'debug'"),
        },
        // Quirk: the status line stays 400 even on success.
        (Method::GET, "stop") => msg(400, 200, "Stop sworker successfully."),
        (Method::GET, _) => text(400, "Unknown request target"),
        (Method::POST, _) => text(400, "Unknown request!"),
        _ => text(400, "Unknown HTTP-method"),
    }
}

fn workload(sim: &SworkerSim) -> HttpResponse {
    let v = sim
        .with(|s| {
            let free = s.cfg.capacity_bytes.saturating_sub(s.used);
            let (mut vn, mut vs, mut ln, mut ls) = (0u64, 0u64, 0u64, 0u64);
            for f in s.valid.values() {
                if f.lost {
                    ln += 1;
                    ls += f.size;
                } else {
                    vn += 1;
                    vs += f.size;
                }
            }
            let pending_size: u64 = s.pending.values().map(|p| p.sealed_bytes).sum();
            let avail = free / GIB;
            json!({
                "files": {
                    "lost": {"num": ln, "size": ls},
                    "pending": {"num": s.pending.len(), "size": pending_size},
                    "valid": {"num": vn, "size": vs},
                },
                "srd": {
                    "disk_available": avail,
                    "disk_available_for_srd": avail.saturating_sub(50),
                    "disk_volume": s.cfg.capacity_bytes / GIB + s.cfg.srd_gib,
                    "srd_complete": s.cfg.srd_gib,
                    // Two data disks, as crust-node mounts them (/opt/crust/disks/1…), sharing the space.
                    "srd_detail": {
                        "/opt/crust/disks/1": {"avail": avail - avail / 2, "srd": s.cfg.srd_gib - s.cfg.srd_gib / 2,
                            "srd_avail": (avail - avail / 2).saturating_sub(25),
                            "volumn": (s.cfg.capacity_bytes / GIB + s.cfg.srd_gib) - (s.cfg.capacity_bytes / GIB + s.cfg.srd_gib) / 2},
                        "/opt/crust/disks/2": {"avail": avail / 2, "srd": s.cfg.srd_gib / 2,
                            "srd_avail": (avail / 2).saturating_sub(25),
                            "volumn": (s.cfg.capacity_bytes / GIB + s.cfg.srd_gib) / 2},
                    },
                    "srd_remaining_task": 0,
                    "sys_disk_available": s.cfg.sys_free_gib,
                }
            })
        })
        .unwrap_or(Value::Null);
    answer(200, v)
}

fn entry(s: &State, cid: &str, with_type: bool) -> Option<Value> {
    if let Some(f) = s.valid.get(cid) {
        let mut v = json!({"c_block_num": f.block, "s_size": f.sealed, "size": f.size});
        if with_type {
            v["type"] = json!(if f.lost { "lost" } else { "valid" });
        }
        return Some(v);
    }
    s.pending.get(cid).map(|p| {
        let mut v = json!({"sealed_size": p.sealed_bytes.to_string(), "used_time": used_time(p.started.elapsed())});
        if with_type {
            v["type"] = json!("pending");
        }
        v
    })
}

fn file_info(sim: &SworkerSim, cid: &str) -> HttpResponse {
    sim.with(|s| s.stats.file_infos += 1);
    match sim.with(|s| entry(s, cid, true)).flatten() {
        Some(v) => answer(200, json!({ cid: v })),
        None => msg(404, 404, "File not found."),
    }
}

fn info_by_type(sim: &SworkerSim, kind: Option<&str>) -> HttpResponse {
    let bad = "Bad parameter! Need a string type parameter:'type' which should be 'all', 'pending', 'valid', 'lost'";
    let Some(kind) = kind.filter(|k| matches!(*k, "all" | "pending" | "valid" | "lost")) else {
        return msg(400, 400, bad);
    };
    let v = sim
        .with(|s| {
            let group = |want: &str| -> serde_json::Map<String, Value> {
                let mut m = serde_json::Map::new();
                match want {
                    "pending" => {
                        for cid in s.pending.keys() {
                            if let Some(e) = entry(s, cid, false) {
                                m.insert(cid.clone(), e);
                            }
                        }
                    }
                    _ => {
                        for (cid, f) in &s.valid {
                            if f.lost == (want == "lost") {
                                if let Some(e) = entry(s, cid, false) {
                                    m.insert(cid.clone(), e);
                                }
                            }
                        }
                    }
                }
                m
            };
            if kind == "all" {
                let mut all = serde_json::Map::new();
                for k in ["lost", "pending", "valid"] {
                    let g = group(k);
                    if !g.is_empty() {
                        all.insert(k.to_string(), Value::Object(g));
                    }
                }
                Value::Object(all)
            } else {
                Value::Object(group(kind))
            }
        })
        .unwrap_or(Value::Null);
    answer(200, v)
}

fn seal_start(sim: &SworkerSim, body: Option<Value>) -> HttpResponse {
    let cid = body.as_ref().and_then(|b| b.get("cid")).and_then(Value::as_str);
    let b58 = body.as_ref().and_then(|b| b.get("cid_b58")).and_then(Value::as_str);
    let (Some(cid), Some(b58)) = (cid, b58) else {
        return msg(400, 0, "Bad parameter! Need a string type parameter:'cid' or 'cid_b58'");
    };
    sim.with(|s| {
        s.stats.seal_starts += 1;
        let window = s.cfg.deleted_window;
        s.deleted.retain(|_, at| at.elapsed() < window);
        if s.valid.contains_key(cid) {
            return msg(200, 8012, format!("This file '{cid}' has been sealed"));
        }
        if s.pending.contains_key(cid) {
            return msg(200, 8013, format!("Same file '{cid}' is being sealed."));
        }
        if s.deleted.contains_key(cid) {
            return msg(400, 8014, format!("Same file '{cid}' is being deleted."));
        }
        if s.pending.len() >= MAX_PENDING {
            return msg(
                500,
                4020,
                "No more file can be sealed! File number reachs the upper limit".to_string(),
            );
        }
        s.pending.insert(
            cid.to_string(),
            Pending {
                started: Instant::now(),
                expected: HashMap::from([(b58.to_string(), 1)]),
                sealed_bytes: 0,
                size: 0,
            },
        );
        msg(
            200,
            0,
            format!("Ready for sealing file '{cid}', waiting for file block"),
        )
    })
    .unwrap_or_else(|| msg(500, 0, "state poisoned"))
}

fn seal(sim: &SworkerSim, q: &HashMap<String, String>, body: &[u8]) -> HttpResponse {
    let Some(cid) = q.get("cid") else {
        return msg(400, 0, "Bad parameter! Need a string type parameter:'cid'");
    };
    sim.with(|s| {
        s.stats.seal_blocks += 1;
        let free = s.cfg.capacity_bytes.saturating_sub(s.used);
        let Some(p) = s.pending.get_mut(cid) else {
            return msg(500, 8005, format!("Seal file '{cid}' failed! New file not found."));
        };
        if body.is_empty() {
            return answer(
                200,
                json!({"message": format!("Seal file '{cid}' successfully"), "path": "empty", "status_code": 0}),
            );
        }
        // The sealed copy needs room on a disk: 4× the block free, as the enclave checks.
        if free < 4 * body.len() as u64 {
            let partial = p.sealed_bytes;
            s.pending.remove(cid);
            s.used = s.used.saturating_sub(partial);
            return msg(500, 8016, format!("Seal file '{cid}' failed! No enough space."));
        }
        let v0 = cid_v0_of(body);
        if let Some(n) = p.expected.get_mut(&v0) {
            *n -= 1;
            if *n == 0 {
                p.expected.remove(&v0);
            }
        }
        for child in dag_pb_links(body).unwrap_or_default() {
            *p.expected.entry(child).or_insert(0) += 1;
        }
        let len = body.len() as u64;
        p.sealed_bytes += len;
        p.size += len;
        s.used += len;
        let path = format!("{:016x}{cid}/{}", 1u64, hex::encode(sp_crypto_hashing::sha2_256(body)));
        answer(
            200,
            json!({"message": format!("Seal file '{cid}' successfully"), "path": path, "status_code": 0}),
        )
    })
    .unwrap_or_else(|| msg(500, 0, "state poisoned"))
}

fn seal_end(sim: &SworkerSim, body: Option<Value>) -> HttpResponse {
    let Some(cid) = body.as_ref().and_then(|b| b.get("cid")).and_then(Value::as_str) else {
        return msg(400, 0, "Bad parameter! Need a string type parameter:'cid'");
    };
    sim.with(|s| {
        s.stats.seal_ends += 1;
        let Some(p) = s.pending.remove(cid) else {
            return msg(404, 8005, format!("File '{cid}' is not being sealed"));
        };
        if !p.expected.is_empty() {
            s.used = s.used.saturating_sub(p.sealed_bytes);
            return msg(
                500,
                8017,
                format!("Seal file '{cid}' failed due to incomplete file blocks"),
            );
        }
        if s.forget.remove(cid) {
            s.used = s.used.saturating_sub(p.sealed_bytes);
            return msg(200, 0, format!("Seal file '{cid}' successfully"));
        }
        let block = s.chain_block;
        s.valid.insert(
            cid.to_string(),
            Sealed {
                size: p.size,
                sealed: p.sealed_bytes,
                block,
                lost: false,
            },
        );
        msg(200, 0, format!("Seal file '{cid}' successfully"))
    })
    .unwrap_or_else(|| msg(500, 0, "state poisoned"))
}

fn unseal(body: Option<Value>) -> HttpResponse {
    match body.as_ref().and_then(|b| b.get("path")).and_then(Value::as_str) {
        Some("empty") => HttpResponse::Ok().finish(),
        Some(_) => msg(404, 404, "Unseal failed: the simulator keeps no sealed block data"),
        None => msg(400, 400, "Bad parameter! Need a string type parameter:'path'"),
    }
}

async fn delete(sim: &SworkerSim, body: Option<Value>) -> HttpResponse {
    let Some(cid) = body.as_ref().and_then(|b| b.get("cid")).and_then(Value::as_str) else {
        return msg(400, 400, "Bad parameter! Need a string type parameter:'cid'");
    };
    let outcome = sim.with(|s| {
        s.stats.deletes += 1;
        let known = if let Some(f) = s.valid.remove(cid) {
            s.used = s.used.saturating_sub(f.sealed);
            true
        } else if let Some(p) = s.pending.remove(cid) {
            s.used = s.used.saturating_sub(p.sealed_bytes);
            true
        } else {
            false
        };
        if known {
            s.stats.deleted_ok += 1;
            s.deleted.insert(cid.to_string(), Instant::now());
        }
        (known, s.cfg.ipfs_url.clone())
    });
    let Some((known, ipfs)) = outcome else {
        return msg(500, 500, "state poisoned");
    };
    if !known {
        return msg(404, 404, format!("File '{cid}' is not existed in sworker"));
    }
    if let Some(ipfs) = ipfs {
        // Like the real sWorker: unpin in IPFS, ignore the outcome.
        let url = format!("{}/api/v0/pin/rm?arg={cid}&timeout=60s", ipfs.trim_end_matches('/'));
        let _ = awc::Client::default()
            .post(url)
            .timeout(Duration::from_secs(60))
            .send()
            .await;
    }
    msg(200, 200, format!("Deleting file '{cid}' successfully"))
}

fn srd_change(sim: &SworkerSim, body: Option<Value>) -> HttpResponse {
    let Some(change) = body.as_ref().and_then(|b| b.get("change")).and_then(Value::as_i64) else {
        return msg(400, 400, "Bad parameter! Need a integral type parameter:'change'");
    };
    if change == 0 {
        return msg(400, 400, "Invalid change");
    }
    sim.with(|s| {
        if change > 0 {
            let avail = s.cfg.capacity_bytes.saturating_sub(s.used) / GIB;
            if avail == 0 {
                return msg(
                    400,
                    400,
                    "No more srd can be added. Use 'sudo crust tools workload' to check.",
                );
            }
            let add = (change as u64).min(avail);
            s.cfg.srd_gib += add;
            s.cfg.capacity_bytes = s.cfg.capacity_bytes.saturating_sub(add * GIB);
            msg(
                200,
                200,
                format!("Change task:{add}G has been added, will be executed later."),
            )
        } else {
            if s.cfg.srd_gib == 0 {
                return msg(
                    400,
                    400,
                    "No srd space to be deleted. Use 'sudo crust tools workload' to check.",
                );
            }
            let del = change.unsigned_abs().min(s.cfg.srd_gib);
            s.cfg.srd_gib -= del;
            s.cfg.capacity_bytes += del * GIB;
            msg(
                200,
                200,
                format!("Change task:-{del}G has been added, will be executed later."),
            )
        }
    })
    .unwrap_or_else(|| msg(500, 0, "state poisoned"))
}
