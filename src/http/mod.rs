//! The admin HTTP surface (actix-web), loopback by default: `/livez`, `/readyz`, `/metrics`, a JSON API under
//! `/api/v1`, and a self-refreshing status page at `/`. Mutating routes need `Authorization: Bearer <admin.authToken>`;
//! with no token configured they are refused.

mod api;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};

use crate::actors::Peers;
use crate::config::Settings;
use crate::db::Db;
use crate::ipfs::{Ipfs, KuboClient};
use crate::sworker::{Sworker, SworkerClient};

/// What the handlers share (one per worker thread: the HTTP clients are not `Send`).
pub struct AppState {
    pub db: Db,
    pub settings: Rc<Settings>,
    /// `None` when the server runs without the pipeline (pause/resume then answer 503).
    pub peers: Option<Peers>,
    pub ipfs: Box<dyn Ipfs>,
    pub sworker: Box<dyn Sworker>,
}

/// A started admin server.
pub struct AdminServer {
    pub addr: SocketAddr,
    pub handle: actix_web::dev::ServerHandle,
}

/// Binds `admin.bind` and serves in the current actix system; returns once listening.
pub fn start(settings: &Settings, db: Db, peers: Option<Peers>) -> std::io::Result<AdminServer> {
    let bind = settings.admin.bind.clone();
    let settings = settings.clone();
    let server = HttpServer::new(move || {
        let s = Rc::new(settings.clone());
        let state = AppState {
            db: db.clone(),
            ipfs: Box::new(KuboClient::new(&s.ipfs.end_point, Duration::from_secs(5))),
            sworker: Box::new(SworkerClient::new(&s.sworker.end_point, Duration::from_secs(5))),
            settings: s,
            peers: peers.clone(),
        };
        App::new()
            .app_data(web::Data::new(state))
            .app_data(web::JsonConfig::default().limit(64 * 1024))
            .configure(api::routes)
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(2)
    .bind(&bind)?;
    let addr = server
        .addrs()
        .first()
        .copied()
        .ok_or_else(|| std::io::Error::other(format!("admin.bind {bind} gave no address")))?;
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    log::info!(target: "smanager::http", "admin HTTP on http://{addr}");
    Ok(AdminServer { addr, handle })
}

/// `200 ok`: the process is alive.
pub async fn livez() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}
