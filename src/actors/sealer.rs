//! Sealer: follows seals in the sWorker.
//!
//! On every check it reads the sWorker's pending map: live pins get their `sealed_size` recorded, and a pin whose
//! seal has not grown for `sealer.stallChecks` checks in a row is cancelled (`storage/seal_end`) and its pin aborted.
//! Pending seals that no live pin explains (left by a crash, or by someone else) are ended after a grace period; when
//! each was first seen is kept in PostgreSQL so the grace survives restarts. A returned pin is confirmed valid by the
//! Puller (`file/info`) before it reaches the Sealer, which records the seal.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};

use super::puller::Abort;
use super::{Deps, RestartActor, SharedPeers, Shutdown};
use crate::db::{pins, state, DbError, PinStatus};

/// kv key: CID → when a pending seal without a pin was first seen.
pub const KV_ORPHAN_SEALS: &str = "orphan_seals";

/// A pin returned and the sWorker confirmed the file valid: record the seal.
#[derive(Message, Debug, Clone)]
#[rtype(result = "()")]
pub struct Pinned {
    pub pin_id: i64,
    pub cid: String,
    pub lane: crate::db::Lane,
    pub started_at: Option<DateTime<Utc>>,
}

/// Run a check now (tests and operators; otherwise it runs every `sealer.checkIntervalSecs`).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<CheckReport, String>")]
pub struct CheckNow;

/// What one check did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CheckReport {
    pub followed: usize,
    pub stalled_cancelled: usize,
    pub orphans_ended: usize,
}

/// Follows sealing in the sWorker: marks files sealed, cancels stalled seals, ends orphaned ones.
pub struct Sealer {
    deps: Deps,
    peers: SharedPeers,
    stopped: bool,
}

impl Sealer {
    /// Builds the actor; what it follows is read from PostgreSQL on every check.
    pub fn new(deps: Deps, peers: SharedPeers) -> Self {
        Sealer {
            deps,
            peers,
            stopped: false,
        }
    }
}

impl Actor for Sealer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = Duration::from_secs(self.deps.settings.sealer.check_interval_secs);
        ctx.run_interval(every, |act, ctx| {
            if act.stopped {
                return;
            }
            let fut = check(act.deps.clone(), act.peers.clone());
            ctx.spawn(fut.into_actor(act).map(|res, _, ctx| {
                if let Err(CheckError::Db(e)) = res {
                    log::error!(target: "smanager::sealer", "check failed: {e}; restarting");
                    ctx.stop();
                }
            }));
        });
    }
}

impl Supervised for Sealer {
    fn restarting(&mut self, _: &mut Self::Context) {
        log::warn!(target: "smanager::sealer", "restarting");
    }
}

#[derive(Debug, thiserror::Error)]
enum CheckError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("sWorker: {0}")]
    Sworker(String),
}

async fn check(deps: Deps, peers: SharedPeers) -> Result<CheckReport, CheckError> {
    let mut report = CheckReport::default();
    // sWorker away: nothing is judged, nothing is marked failed.
    let pending = deps
        .sworker
        .pending()
        .await
        .map_err(|e| CheckError::Sworker(e.to_string()))?;
    let live = deps.db.run(|c| pins::live(c)).await?;
    let stall_checks = deps.settings.sealer.stall_checks as i32;
    let mut explained: HashMap<&str, ()> = HashMap::new();
    for pin in &live {
        explained.insert(pin.cid.as_str(), ());
        if pin.status != PinStatus::Pinning {
            continue;
        }
        let Some(sealed) = pending.get(&pin.cid) else {
            continue;
        };
        report.followed += 1;
        let id = pin.id;
        let sealed = i64::try_from(*sealed).unwrap_or(i64::MAX);
        let stalls = deps.db.run(move |c| pins::record_seal_progress(c, id, sealed)).await?;
        if stalls >= stall_checks {
            log::warn!(target: "smanager::sealer", cid = pin.cid.as_str(), pin = id; "seal stalled at {sealed} bytes for {stalls} checks: cancelling");
            if let Err(e) = deps.sworker.seal_end(&pin.cid).await {
                log::warn!(target: "smanager::sealer", cid = pin.cid.as_str(); "seal_end failed: {e}");
            }
            if let Some(p) = peers.get() {
                let _ = p
                    .puller
                    .send(Abort {
                        pin_id: id,
                        reason: format!("seal stalled at {sealed} bytes"),
                    })
                    .await;
            }
            report.stalled_cancelled += 1;
            crate::metrics::METRICS
                .seals_total
                .with_label_values(&["stalled_cancelled"])
                .inc();
        }
    }

    // Orphans: pending seals no live pin explains.
    let grace = chrono::Duration::seconds(deps.settings.sealer.orphan_grace_secs as i64);
    let mut seen: BTreeMap<String, DateTime<Utc>> = deps
        .db
        .run(|c| state::kv_get(c, KV_ORPHAN_SEALS))
        .await?
        .unwrap_or_default();
    seen.retain(|cid, _| pending.contains_key(cid) && !explained.contains_key(cid.as_str()));
    let now = Utc::now();
    for cid in pending.keys() {
        if explained.contains_key(cid.as_str()) {
            continue;
        }
        let first = *seen.entry(cid.clone()).or_insert(now);
        if now - first >= grace {
            log::warn!(target: "smanager::sealer", cid = cid.as_str(); "ending a pending seal no pin explains (seen since {first})");
            match deps.sworker.seal_end(cid).await {
                Ok(_) => {
                    seen.remove(cid);
                    report.orphans_ended += 1;
                    crate::metrics::METRICS
                        .seals_total
                        .with_label_values(&["orphan_ended"])
                        .inc();
                }
                Err(e) => {
                    log::warn!(target: "smanager::sealer", cid = cid.as_str(); "seal_end failed: {e}")
                }
            }
        }
    }
    deps.db.run(move |c| state::kv_set(c, KV_ORPHAN_SEALS, &seen)).await?;
    Ok(report)
}

impl Handler<CheckNow> for Sealer {
    type Result = ResponseActFuture<Self, Result<CheckReport, String>>;
    fn handle(&mut self, _: CheckNow, _: &mut Self::Context) -> Self::Result {
        let fut = check(self.deps.clone(), self.peers.clone());
        Box::pin(fut.into_actor(self).map(|res, _, ctx| match res {
            Ok(r) => Ok(r),
            Err(CheckError::Db(e)) => {
                ctx.stop();
                Err(e.to_string())
            }
            Err(e) => Err(e.to_string()),
        }))
    }
}

impl Handler<Pinned> for Sealer {
    type Result = ();
    /// The Puller has already seen `file/info` say valid (it confirms before ending a pin), so this only records the
    /// seal's duration; asking the sWorker again would repeat that call for every file.
    fn handle(&mut self, msg: Pinned, _: &mut Self::Context) {
        let m = &crate::metrics::METRICS;
        m.seals_total.with_label_values(&["confirmed"]).inc();
        if let Some(start) = msg.started_at {
            let secs = (Utc::now() - start).num_milliseconds().max(0) as f64 / 1000.0;
            m.seal_duration_seconds
                .with_label_values(&[msg.lane.as_str()])
                .observe(secs);
        }
        log::debug!(target: "smanager::sealer", cid = msg.cid.as_str(), pin = msg.pin_id; "seal recorded");
    }
}

impl Handler<RestartActor> for Sealer {
    type Result = ();
    fn handle(&mut self, _: RestartActor, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Shutdown> for Sealer {
    type Result = ();
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) {
        self.stopped = true;
    }
}
