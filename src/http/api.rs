//! Routes of the admin server.

// Helpers return the early answer (an `HttpResponse`) as their error; it is built once per request and never stored.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::actors::picker::{CapacityFreed, SetPaused};
use crate::db::{cleanups, files, pins, stats, DbError, FileStatus};
use crate::metrics::METRICS;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(status_page))
        .route("/livez", web::get().to(super::livez))
        .route("/readyz", web::get().to(readyz))
        .route("/metrics", web::get().to(metrics))
        .route("/api/v1/stats", web::get().to(stats_route))
        .route("/api/v1/files", web::get().to(list_files))
        .route("/api/v1/files/{cid}", web::get().to(show_file))
        .route("/api/v1/files/{cid}/explain", web::get().to(explain_file))
        .route("/api/v1/files/{cid}/retry", web::post().to(retry_file))
        .route("/api/v1/plan", web::get().to(plan_route))
        .route("/api/v1/retry", web::post().to(retry_status))
        .route("/api/v1/pins", web::get().to(list_pins))
        .route("/api/v1/cleanups", web::get().to(list_cleanups))
        .route("/api/v1/picking/pause", web::post().to(pause))
        .route("/api/v1/picking/resume", web::post().to(resume));
}

fn error(status: actix_web::http::StatusCode, msg: impl std::fmt::Display) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": msg.to_string() }))
}

fn db_error(e: DbError) -> HttpResponse {
    log::warn!(target: "smanager::http", "database: {e}");
    error(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e)
}

/// Mutating routes need the configured bearer token.
fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), HttpResponse> {
    let token = &state.settings.admin.auth_token;
    if token.is_empty() {
        return Err(error(
            actix_web::http::StatusCode::FORBIDDEN,
            "mutating routes are disabled: set admin.authToken",
        ));
    }
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), token.as_bytes()) => Ok(()),
        _ => Err(HttpResponse::Unauthorized()
            .insert_header(("WWW-Authenticate", "Bearer"))
            .json(json!({ "error": "missing or wrong bearer token" }))),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn status_page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(include_str!("status.html"))
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let budget = Duration::from_secs(5);
    let s = &state.settings;
    let pg = actix_rt::time::timeout(budget, state.db.run(|c| stats::snapshot(c))).await;
    let (pg_check, snapshot) = match pg {
        Ok(Ok(st)) => (json!({"ok": true}), Some(st)),
        Ok(Err(e)) => (json!({"ok": false, "reason": e.to_string()}), None),
        Err(_) => (json!({"ok": false, "reason": "PostgreSQL did not answer in 5 s"}), None),
    };
    let chain_check = match &snapshot {
        None => json!({"ok": false, "reason": "unknown: PostgreSQL is unavailable"}),
        Some(st) if st.node_syncing_since.is_some() => {
            let since = st.node_syncing_since.unwrap_or_else(chrono::Utc::now);
            let mins = (chrono::Utc::now() - since).num_minutes().max(0);
            json!({"ok": false, "syncing_since": since,
                   "reason": format!("the Crust node is syncing (for {mins} min); indexing waits for it")})
        }
        Some(st) => match (st.finalized_block, st.finalized_seen_at) {
            (Some(block), Some(seen)) => {
                let age = (chrono::Utc::now() - seen).num_seconds().max(0);
                let lag = st.lag_blocks.unwrap_or(0);
                let stale = age as u64 > s.admin.chain_stale_secs;
                let behind = lag as u64 > s.admin.max_lag_blocks;
                let reason = if stale {
                    Some(format!("no new finalized block for {age} s"))
                } else if behind {
                    Some(format!("indexer is {lag} blocks behind"))
                } else {
                    None
                };
                json!({"ok": reason.is_none(), "reason": reason, "finalized_block": block,
                       "seconds_since_new_block": age, "lag_blocks": lag})
            }
            _ => json!({"ok": false, "reason": "no finalized block seen yet"}),
        },
    };
    let ipfs_check = match actix_rt::time::timeout(budget, state.ipfs.version()).await {
        Ok(Ok(v)) => json!({"ok": true, "version": v}),
        Ok(Err(e)) => json!({"ok": false, "reason": e.to_string()}),
        Err(_) => json!({"ok": false, "reason": "IPFS did not answer in 5 s"}),
    };
    let sworker_check = match actix_rt::time::timeout(budget, state.sworker.workload()).await {
        Ok(Ok(w)) => json!({"ok": true, "free_bytes": w.free_bytes(), "srd_ratio": w.srd_ratio()}),
        Ok(Err(e)) => json!({"ok": false, "reason": e.to_string()}),
        Err(_) => json!({"ok": false, "reason": "sWorker did not answer in 5 s"}),
    };
    // Orders of an undecodable block are missing until a FilesV2 scan recovers them: not ready, with the reason.
    let decoding_check = match &snapshot {
        None => json!({"ok": false, "reason": "unknown: PostgreSQL is unavailable"}),
        Some(st) if st.alarms.is_empty() => json!({"ok": true}),
        Some(st) => {
            json!({"ok": false, "reason": format!("{} undecodable block(s) not yet recovered by a FilesV2 scan (first: block {})",
            st.alarms.len(), st.alarms[0].block.unwrap_or(-1)), "alarms": st.alarms})
        }
    };
    let checks = json!({"postgres": pg_check, "chain": chain_check, "ipfs": ipfs_check, "sworker": sworker_check,
                        "decoding": decoding_check});
    let ready = ["postgres", "chain", "ipfs", "sworker", "decoding"]
        .iter()
        .all(|k| checks[k]["ok"].as_bool() == Some(true));
    let body = json!({"ready": ready, "checks": checks});
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Service gauges are recomputed from PostgreSQL on every scrape; counters come from the actors.
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    match state.db.run(|c| stats::snapshot(c)).await {
        Ok(st) => {
            let m = &METRICS;
            for (status, n) in &st.files {
                m.files.with_label_values(&[status]).set(*n);
            }
            m.pins_in_flight.with_label_values(&["small"]).set(st.lanes.small);
            m.pins_in_flight.with_label_values(&["large"]).set(st.lanes.large);
            m.reserved_bytes.set(st.lanes.reserved_bytes);
            for (status, n) in &st.cleanups {
                m.cleanups.with_label_values(&[status]).set(*n);
            }
            m.chain_finalized_block.set(st.finalized_block.unwrap_or(0));
            m.indexer_block.set(st.indexed_block.unwrap_or(0));
            m.indexer_lag_blocks.set(st.lag_blocks.unwrap_or(0));
            m.scanner_files.set(st.scanned_files);
            let round = st
                .cursors
                .iter()
                .find(|c| c.name == crate::db::state::SCANNER_CURSOR)
                .map_or(0, |c| c.scan_round);
            m.scanner_round.set(round);
        }
        Err(e) => log::warn!(target: "smanager::http", "metrics without database gauges: {e}"),
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::render())
}

async fn stats_route(state: web::Data<AppState>) -> HttpResponse {
    let r = state
        .db
        .run(|c| {
            let st = stats::operator_view(c)?;
            let recent_pins = pins::recent(c, 20)?;
            let failures = files::recent_failures(c, 20)?;
            Ok((st, recent_pins, failures))
        })
        .await;
    let (mut st, recent_pins, failures) = match r {
        Ok(v) => v,
        Err(e) => return db_error(e),
    };
    let max_lag = i64::try_from(state.settings.admin.max_lag_blocks).unwrap_or(i64::MAX);
    if let Some(lag) = st.lag_blocks.filter(|l| *l > max_lag) {
        st.alarms.push(crate::db::state::Alarm {
            kind: "indexer_lag".into(),
            block: st.indexed_block,
            detail: format!("the indexer is {lag} blocks behind the finalized head (admin.maxLagBlocks {max_lag})"),
            since: None,
        });
    }
    let s = &state.settings.scheduler;
    let workload = actix_rt::time::timeout(Duration::from_secs(3), state.sworker.workload()).await;
    let (sworker, sworker_error) = match workload {
        Ok(Ok(w)) => (
            Some(json!({
                "free_bytes": w.free_bytes(),
                "sys_free_bytes": w.sys_free_bytes(),
                "srd_ratio": w.srd_ratio(),
            })),
            None,
        ),
        Ok(Err(e)) => (None, Some(e.to_string())),
        Err(_) => (None, Some("no answer within 3 s".to_string())),
    };
    let capacity = json!({
        "sworker": sworker,
        "sworker_error": sworker_error,
        "reserved_bytes": st.lanes.reserved_bytes,
        "min_srd_ratio": s.min_srd_ratio,
        "min_sys_free_bytes": s.min_sys_free_gib.saturating_mul(1 << 30),
        "space_factor": s.space_factor,
    });
    HttpResponse::Ok().json(json!({
        "stats": st,
        "capacity": capacity,
        "recent_pins": recent_pins,
        "recent_failures": failures,
    }))
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    reason: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

fn page(q: &ListQuery) -> Result<(i64, i64), HttpResponse> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(error(
            actix_web::http::StatusCode::BAD_REQUEST,
            "limit must be from 1 to 1000",
        ));
    }
    Ok((limit, q.offset.unwrap_or(0).max(0)))
}

fn parse_status(s: &Option<String>) -> Result<Option<FileStatus>, HttpResponse> {
    s.as_deref()
        .map(|s| s.parse::<FileStatus>())
        .transpose()
        .map_err(|e| error(actix_web::http::StatusCode::BAD_REQUEST, e))
}

async fn list_files(state: web::Data<AppState>, q: web::Query<ListQuery>) -> HttpResponse {
    let (limit, offset) = match page(&q) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let status = match parse_status(&q.status) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let reason = q.reason.clone();
    match state
        .db
        .run(move |c| files::list(c, status, reason.as_deref(), limit, offset))
        .await
    {
        Ok(rows) => HttpResponse::Ok().json(json!({"files": rows, "limit": limit, "offset": offset})),
        Err(e) => db_error(e),
    }
}

async fn show_file(state: web::Data<AppState>, cid: web::Path<String>) -> HttpResponse {
    let cid = cid.into_inner();
    match state.db.run(move |c| files::detail(c, &cid)).await {
        Ok(Some(d)) => HttpResponse::Ok().json(d),
        Ok(None) => error(actix_web::http::StatusCode::NOT_FOUND, "no such file"),
        Err(e) => db_error(e),
    }
}

async fn explain_file(state: web::Data<AppState>, cid: web::Path<String>) -> HttpResponse {
    let cid = cid.into_inner();
    match crate::explain::explain(&state.db, &state.settings, state.sworker.as_ref(), &cid).await {
        Ok(Some(e)) => HttpResponse::Ok().json(e),
        Ok(None) => error(actix_web::http::StatusCode::NOT_FOUND, "no such file"),
        Err(e) => db_error(e),
    }
}

/// `GET /api/v1/plan?limit=N&seed=S&set=scheduler.strategy=srdFirst&set=…`: the next round, dry.
async fn plan_route(state: web::Data<AppState>, q: web::Query<Vec<(String, String)>>) -> HttpResponse {
    let mut limit = 50usize;
    let mut seed: u64 = rand::random();
    let mut sets = Vec::new();
    for (k, v) in q.into_inner() {
        match k.as_str() {
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => limit = n,
                _ => return error(actix_web::http::StatusCode::BAD_REQUEST, "limit must be from 1 to 1000"),
            },
            "seed" => match v.parse() {
                Ok(n) => seed = n,
                Err(_) => return error(actix_web::http::StatusCode::BAD_REQUEST, "seed must be an integer"),
            },
            "set" => sets.push(v),
            other => {
                return error(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    format!("unknown parameter `{other}` (limit, seed, set)"),
                )
            }
        }
    }
    let proposed = match crate::config::with_overrides(&state.settings, &sets) {
        Ok(s) => s,
        Err(e) => return error(actix_web::http::StatusCode::BAD_REQUEST, e),
    };
    match crate::explain::plan(&state.db, &proposed, state.sworker.as_ref(), limit, seed).await {
        Ok(p) => HttpResponse::Ok().json(p),
        Err(e) => db_error(e),
    }
}

async fn list_pins(state: web::Data<AppState>, q: web::Query<ListQuery>) -> HttpResponse {
    let (limit, _) = match page(&q) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match state.db.run(move |c| pins::recent(c, limit)).await {
        Ok(rows) => HttpResponse::Ok().json(json!({"pins": rows})),
        Err(e) => db_error(e),
    }
}

async fn list_cleanups(state: web::Data<AppState>, q: web::Query<ListQuery>) -> HttpResponse {
    let (limit, _) = match page(&q) {
        Ok(p) => p,
        Err(r) => return r,
    };
    match state.db.run(move |c| cleanups::recent(c, limit)).await {
        Ok(rows) => HttpResponse::Ok().json(json!({"cleanups": rows})),
        Err(e) => db_error(e),
    }
}

fn wake_picker(state: &AppState) {
    if let Some(p) = &state.peers {
        p.picker.do_send(CapacityFreed);
    }
}

async fn retry_file(req: HttpRequest, state: web::Data<AppState>, cid: web::Path<String>) -> HttpResponse {
    if let Err(r) = authorize(&req, &state) {
        return r;
    }
    let cid = cid.into_inner();
    match state.db.run(move |c| files::retry(c, Some(&cid), None)).await {
        Ok(0) => error(
            actix_web::http::StatusCode::CONFLICT,
            "unknown file, or not in a retryable status",
        ),
        Ok(n) => {
            wake_picker(&state);
            HttpResponse::Ok().json(json!({"retried": n}))
        }
        Err(e) => db_error(e),
    }
}

async fn retry_status(req: HttpRequest, state: web::Data<AppState>, q: web::Query<ListQuery>) -> HttpResponse {
    if let Err(r) = authorize(&req, &state) {
        return r;
    }
    let status = match parse_status(&q.status) {
        Ok(Some(s)) if files::RETRYABLE.contains(&s) => s,
        Ok(Some(s)) => {
            return error(
                actix_web::http::StatusCode::BAD_REQUEST,
                format!("status `{s}` is not retryable"),
            )
        }
        Ok(None) => return error(actix_web::http::StatusCode::BAD_REQUEST, "status is required"),
        Err(r) => return r,
    };
    match state.db.run(move |c| files::retry(c, None, Some(status))).await {
        Ok(n) => {
            wake_picker(&state);
            HttpResponse::Ok().json(json!({"retried": n}))
        }
        Err(e) => db_error(e),
    }
}

async fn set_paused(req: HttpRequest, state: web::Data<AppState>, paused: bool) -> HttpResponse {
    if let Err(r) = authorize(&req, &state) {
        return r;
    }
    let Some(peers) = &state.peers else {
        return error(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "the pipeline is not running",
        );
    };
    match peers.picker.send(SetPaused(paused)).await {
        Ok(Ok(())) => HttpResponse::Ok().json(json!({"picking_paused": paused})),
        Ok(Err(e)) => error(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e),
        Err(e) => error(actix_web::http::StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn pause(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    set_paused(req, state, true).await
}

async fn resume(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    set_paused(req, state, false).await
}
