//! A seal coordinator for tests and devnet: the TypeScript manager's coordinator protocol, with a skip list and a
//! pull switch, checking the `nodeId` and bearer headers and recording every call.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;

#[derive(Default)]
struct State {
    skip: HashSet<String>,
    pull_disabled: bool,
    /// Answer 503 to every seal call.
    down: bool,
    /// The word before the token (`Bearer`, or TypeScript's `Bear:`).
    scheme: String,
    calls: Vec<(String, String)>,
    telemetry: Vec<serde_json::Value>,
}

/// A running coordinator (also a telemetry collector at `POST /telemetry`).
#[derive(Clone)]
pub struct CoordinatorSim {
    state: Arc<Mutex<State>>,
    token: String,
    addr: SocketAddr,
    handle: ServerHandle,
}

async fn handle(req: HttpRequest, body: web::Bytes, sim: web::Data<(Arc<Mutex<State>>, String)>) -> HttpResponse {
    let (state, token) = (&sim.0, &sim.1);
    if req.path() == "/telemetry" && req.method() == actix_web::http::Method::POST {
        if let (Ok(mut s), Ok(v)) = (state.lock(), serde_json::from_slice(&body)) {
            s.telemetry.push(v);
        }
        return HttpResponse::Ok().finish();
    }
    let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok());
    let (scheme, down) = state
        .lock()
        .map(|s| (s.scheme.clone(), s.down))
        .unwrap_or_else(|_| ("Bearer".into(), true));
    if auth != Some(format!("{scheme} {token}").as_str()) || !req.headers().contains_key("nodeid") {
        return HttpResponse::Unauthorized().finish();
    }
    if down && req.path() != "/ping" {
        return HttpResponse::ServiceUnavailable().body("coordinator down");
    }
    if req.path() == "/ping" {
        return HttpResponse::Ok().json(json!({"ok": true}));
    }
    let parts: Vec<&str> = req.path().trim_start_matches('/').split('/').collect();
    let [_, _, "seal", cid] = parts.as_slice() else {
        return HttpResponse::NotFound().finish();
    };
    let Ok(mut s) = state.lock() else {
        return HttpResponse::InternalServerError().finish();
    };
    s.calls.push((req.method().to_string(), cid.to_string()));
    if req.method() == actix_web::http::Method::DELETE {
        return HttpResponse::Ok().json(json!({"seal": true, "reason": "ok"}));
    }
    if s.pull_disabled {
        return HttpResponse::Ok().json(json!({"seal": false, "reason": "pullDisabled"}));
    }
    if s.skip.contains(*cid) {
        return HttpResponse::Ok().json(json!({"seal": false, "reason": "skipFile"}));
    }
    HttpResponse::Ok().json(json!({"seal": true, "reason": "ok"}))
}

impl CoordinatorSim {
    /// Starts the seal-coordinator simulator, accepting only `token`.
    pub fn start(addr: SocketAddr, token: &str) -> std::io::Result<CoordinatorSim> {
        let state = Arc::new(Mutex::new(State {
            scheme: "Bearer".into(),
            ..Default::default()
        }));
        let data = (state.clone(), token.to_string());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(data.clone()))
                .default_service(web::to(handle))
        })
        .workers(1)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(addr)?;
        let addr = server.addrs().first().copied().unwrap_or(addr);
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Ok(CoordinatorSim {
            state,
            token: token.to_string(),
            addr,
            handle,
        })
    }

    /// Base URL for `sealCoordinator.endPoint`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bearer token it expects.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Answer `skipFile` for this CID.
    pub fn skip(&self, cid: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.skip.insert(cid.to_string());
        }
    }

    /// Expect `Authorization: <scheme> <token>` (TypeScript 1.0.3 sends `Bear:`).
    pub fn set_scheme(&self, scheme: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.scheme = scheme.to_string();
        }
    }

    /// Answer `pullDisabled` to every seal request.
    pub fn set_pull_disabled(&self, on: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.pull_disabled = on;
        }
    }

    /// Answer 503 to every seal call (a coordinator that is down behind a proxy).
    pub fn set_down(&self, on: bool) {
        if let Ok(mut s) = self.state.lock() {
            s.down = on;
        }
    }

    /// `(method, cid)` of every seal call, in order.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.state.lock().map(|s| s.calls.clone()).unwrap_or_default()
    }

    /// Telemetry reports received at `/telemetry`.
    pub fn telemetry(&self) -> Vec<serde_json::Value> {
        self.state.lock().map(|s| s.telemetry.clone()).unwrap_or_default()
    }

    /// Stops the server.
    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}
