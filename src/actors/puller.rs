//! Puller: drives `pin/add` for live pins. On Crust IPFS the pin seals every block into the sWorker as it arrives.
//!
//! Each pin runs under a lease in PostgreSQL, renewed while it runs. On (re)start the Puller re-adopts every live pin
//! whose lease is its own, unheld or expired — the same pin row, never a second one — and drives it again (IPFS
//! answers at once for content it already pinned). A pin ends at the absolute cap (a base plus size at a minimum
//! rate), or earlier when streamed progress stops growing for the stall timeout.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use actix::prelude::*;
use futures_util::StreamExt;

use super::picker::CapacityFreed;
use super::sealer::Pinned;
use super::{Deps, RestartActor, SharedPeers, Shutdown};
use crate::db::pins::{self, FailKind, RetryPolicy};
use crate::db::{DbError, Pin};
use crate::ipfs::{IpfsError, PinEvent};
use crate::sworker::FileState;

/// Drive the live pin `pin_id` (reserved by the Picker).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Pull {
    pub pin_id: i64,
}

/// Cancel a running pin (stalled seal, closed order, operator); the file is not blamed.
#[derive(Message, Debug, Clone)]
#[rtype(result = "bool")]
pub struct Abort {
    pub pin_id: i64,
    pub reason: String,
}

/// Pins this process is driving right now, and how often the actor started.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "InFlightReport")]
pub struct InFlight;

/// Answer to [`InFlight`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct InFlightReport {
    pub pins: Vec<i64>,
    pub starts: u32,
}

/// How a pin attempt ended.
#[derive(Debug)]
enum Outcome {
    Pinned,
    Failed(String, FailKind),
}

#[derive(Message)]
#[rtype(result = "()")]
struct Finished {
    pin: Pin,
    outcome: Outcome,
}

/// Runs `pin/add` for queued pins under a lease, bounded per lane, and records every outcome.
pub struct Puller {
    deps: Deps,
    peers: SharedPeers,
    running: HashMap<i64, SpawnHandle>,
    /// Pins whose lease claim is in flight (their `running` entry is a placeholder).
    claiming: HashSet<i64>,
    /// Pins aborted while their claim was in flight: the claim must not start `pin/add`.
    aborted_claims: HashSet<i64>,
    starts: u32,
    stopped: bool,
}

impl Puller {
    /// Builds the actor; on start, and every lease period, it re-adopts live pins that are its own or whose lease expired.
    pub fn new(deps: Deps, peers: SharedPeers) -> Self {
        Puller {
            deps,
            peers,
            running: HashMap::new(),
            claiming: HashSet::new(),
            aborted_claims: HashSet::new(),
            starts: 0,
            stopped: false,
        }
    }

    fn policy(&self) -> RetryPolicy {
        let r = &self.deps.settings.retry;
        RetryPolicy {
            base_delay_secs: r.base_delay_secs,
            max_delay_secs: r.max_delay_secs,
            max_attempts: r.max_attempts,
        }
    }

    /// Claims the lease and starts `pin/add`, unless this pin already runs here.
    fn drive(&mut self, pin_id: i64, ctx: &mut Context<Self>) {
        if self.stopped || self.running.contains_key(&pin_id) {
            return;
        }
        let db = self.deps.db.clone();
        let holder = self.deps.holder.clone();
        let lease = self.deps.settings.puller.lease_secs;
        // Mark the slot as taken before the claim returns, so a second Pull cannot race it.
        let placeholder = ctx.spawn(fut::ready(()));
        self.running.insert(pin_id, placeholder);
        self.claiming.insert(pin_id);
        let claim = async move { db.run(move |c| pins::claim(c, pin_id, &holder, lease)).await };
        ctx.spawn(claim.into_actor(self).map(move |res, act, ctx| {
            act.claiming.remove(&pin_id);
            if act.aborted_claims.remove(&pin_id) {
                // Aborted while the claim was in flight: the abort is recorded; never start the pin.
                log::info!(target: "smanager::puller", pin = pin_id; "aborted before it started");
                return;
            }
            act.after_claim(pin_id, res, ctx);
        }));
    }

    /// Starts `pin/add` for a claimed pin.
    fn after_claim(&mut self, pin_id: i64, res: Result<Option<Pin>, DbError>, ctx: &mut Context<Self>) {
        let act = self;
        match res {
            Ok(Some(pin)) => {
                log::info!(target: "smanager::puller", cid = pin.cid.as_str(), pin = pin.id, attempt = pin.attempt; "pinning");
                let fut = pin_once(act.deps.clone(), pin.clone());
                let handle = ctx.spawn(
                    fut.into_actor(act)
                        .map(move |outcome, _act, ctx| ctx.notify(Finished { pin, outcome })),
                );
                act.running.insert(pin_id, handle);
            }
            Ok(None) => {
                act.running.remove(&pin_id);
            }
            Err(e) => {
                act.running.remove(&pin_id);
                log::error!(target: "smanager::puller", "cannot claim pin {pin_id}: {e}; restarting");
                ctx.stop();
            }
        }
    }
}

/// One `pin/add` attempt with the absolute cap and the progress-driven stall timeout.
async fn pin_once(deps: Deps, pin: Pin) -> Outcome {
    let p = &deps.settings.puller;
    let size = u64::try_from(pin.size_bytes).unwrap_or(0);
    let cap = Duration::from_secs(p.base_timeout_secs + size / p.min_bytes_per_sec.max(1));
    let stall = Duration::from_secs(p.stall_timeout_secs);
    let run = async {
        let mut stream = deps.ipfs.pin_add(&pin.cid, cap).await?;
        let mut streaming = false;
        let mut last = 0u64;
        // Stalled = the streamed progress has not grown for `stall` (lines that repeat the same count do not count).
        let mut grew_at = std::time::Instant::now();
        loop {
            // The stall timer only runs once the server has shown it streams progress.
            let next = if streaming {
                let left = stall.saturating_sub(grew_at.elapsed());
                match actix_rt::time::timeout(left, stream.next()).await {
                    Ok(n) => n,
                    Err(_) => return Err(PinFail::Stalled(last)),
                }
            } else {
                stream.next().await
            };
            match next {
                Some(Ok(PinEvent::Pinned)) => return Ok(()),
                Some(Ok(PinEvent::Progress(n))) => {
                    if !streaming {
                        streaming = true;
                        grew_at = std::time::Instant::now();
                    }
                    if n > last {
                        last = n;
                        grew_at = std::time::Instant::now();
                        let id = pin.id;
                        let progress = i64::try_from(n).unwrap_or(i64::MAX);
                        if let Err(e) = deps.db.run(move |c| pins::record_progress(c, id, progress)).await {
                            log::warn!(target: "smanager::puller", "cannot record progress of pin {id}: {e}");
                        }
                    } else if grew_at.elapsed() >= stall {
                        return Err(PinFail::Stalled(last));
                    }
                }
                Some(Err(e)) => return Err(PinFail::Ipfs(e)),
                None => return Err(PinFail::Ipfs(IpfsError::Decode("pin/add ended early".into()))),
            }
        }
    };
    match actix_rt::time::timeout(cap + Duration::from_secs(10), run).await {
        Ok(Ok(())) => confirm_seal(&deps, &pin.cid).await,
        Ok(Err(PinFail::Stalled(n))) => Outcome::Failed(
            format!("stalled: no progress for {}s after {n} blocks", stall.as_secs()),
            FailKind::Error,
        ),
        Ok(Err(PinFail::Ipfs(IpfsError::StreamError))) => unexplained_end(&deps, &pin).await,
        Ok(Err(PinFail::Ipfs(e))) => {
            // 8013: the sWorker still holds a pending seal of this CID from an attempt that died with it unreachable
            // (only one live pin per CID exists, so it is ours and stale): end it so the retry can start afresh.
            if e.seal_code() == Some(8013) {
                match deps.sworker.seal_end(&pin.cid).await {
                    Ok(_) => {
                        log::info!(target: "smanager::puller", cid = pin.cid.as_str(); "ended a stale pending seal (8013)")
                    }
                    Err(err) => {
                        log::warn!(target: "smanager::puller", cid = pin.cid.as_str(); "cannot end the stale pending seal: {err}")
                    }
                }
            }
            let kind = if e.is_no_space() {
                FailKind::NoSpace
            } else {
                FailKind::Error
            };
            Outcome::Failed(e.to_string(), kind)
        }
        Err(_) => Outcome::Failed(format!("timed out after {}s", cap.as_secs()), FailKind::Error),
    }
}

/// `pin/add` ended mid-stream with its error in the `X-Stream-Error` trailer, which awc cannot read: ask the sWorker
/// what happened instead of guessing. Valid → it sealed after all (confirmed as usual); too little space left for
/// this file → out of space mid-seal (8016), which waits for space without spending an attempt; otherwise a failed
/// attempt.
async fn unexplained_end(deps: &Deps, pin: &Pin) -> Outcome {
    let why = "pin/add ended mid-stream (error in the X-Stream-Error trailer)";
    if let Ok(Some(FileState::Valid { .. })) = deps.sworker.file_info(&pin.cid).await {
        return confirm_seal(deps, &pin.cid).await;
    }
    match deps.sworker.workload().await {
        Ok(w) => {
            let need = (pin.size_bytes.max(0) as f64 * deps.settings.scheduler.space_factor) as u64;
            if w.free_bytes() < need {
                Outcome::Failed(
                    format!(
                        "{why}; the sWorker has {} free for a file needing {}: out of space",
                        crate::decision::human_bytes(w.free_bytes()),
                        crate::decision::human_bytes(need)
                    ),
                    FailKind::NoSpace,
                )
            } else {
                Outcome::Failed(
                    format!("{why}; the sWorker has room, so not for space"),
                    FailKind::Error,
                )
            }
        }
        Err(e) => Outcome::Failed(format!("{why}; the sWorker cannot say why: {e}"), FailKind::Error),
    }
}

/// `pin/add` returned; the file is sealed only when the sWorker says it is valid. A seal still pending is waited for
/// (the Sealer cancels it if it stalls); a file the sWorker does not know or reports lost for
/// `sealer.confirmTimeoutSecs` after the pin (a sWorker restart loses pending seals while IPFS may finish the pin)
/// is a failed attempt, retried like any other. While the sWorker does not answer, the pin keeps its slot and waits.
async fn confirm_seal(deps: &Deps, cid: &str) -> Outcome {
    let s = &deps.settings.sealer;
    let limit = Duration::from_secs(s.confirm_timeout_secs);
    let poll = Duration::from_secs(s.check_interval_secs.clamp(1, 10));
    let mut unseen_since: Option<std::time::Instant> = None;
    loop {
        match deps.sworker.file_info(cid).await {
            Ok(Some(FileState::Valid { .. })) => return Outcome::Pinned,
            Ok(Some(FileState::Pending { .. })) => unseen_since = None,
            Ok(state) => {
                let what = if state.is_some() {
                    "reports lost"
                } else {
                    "does not know"
                };
                let since = *unseen_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= limit {
                    // Crust's pinner answers a pin it already holds at once, without sealing: unpin, so that the
                    // retry walks the DAG and seals it again.
                    match deps.ipfs.pin_rm(cid).await {
                        Ok(_) => {}
                        Err(e) => {
                            log::warn!(target: "smanager::puller", cid = cid; "cannot unpin before the retry: {e}")
                        }
                    }
                    return Outcome::Failed(
                        format!("pinned, but the sWorker {what} the file {}s later", limit.as_secs()),
                        FailKind::Error,
                    );
                }
            }
            Err(e) => {
                log::debug!(target: "smanager::puller", cid = cid; "confirming the seal: {e}");
            }
        }
        actix_rt::time::sleep(poll).await;
    }
}

enum PinFail {
    Stalled(u64),
    Ipfs(IpfsError),
}

impl From<IpfsError> for PinFail {
    fn from(e: IpfsError) -> Self {
        PinFail::Ipfs(e)
    }
}

impl Actor for Puller {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.starts += 1;
        self.running.clear();
        self.claiming.clear();
        self.aborted_claims.clear();
        let lease = self.deps.settings.puller.lease_secs;
        ctx.run_interval(Duration::from_secs((lease / 3).max(1)), move |act, ctx| {
            let ids: Vec<i64> = act.running.keys().copied().collect();
            if ids.is_empty() {
                return;
            }
            let db = act.deps.db.clone();
            let holder = act.deps.holder.clone();
            let renew = async move { db.run(move |c| pins::renew(c, &holder, &ids, lease)).await };
            ctx.spawn(renew.into_actor(act).map(|res: Result<usize, DbError>, _, ctx| {
                if let Err(e) = res {
                    log::error!(target: "smanager::puller", "cannot renew leases: {e}; restarting");
                    ctx.stop();
                }
            }));
        });
        // Re-adopt what was in flight: our own leases, unheld ones, and — checked again every lease period, since a
        // crashed process's leases expire after we start — expired ones.
        self.adopt(ctx);
        ctx.run_interval(Duration::from_secs(lease.max(1)), |act, ctx| act.adopt(ctx));
    }

    fn stopping(&mut self, ctx: &mut Self::Context) -> Running {
        // Dropping the requests closes their connections, which cancels the pins in IPFS; leases stay ours.
        for (_, h) in self.running.drain() {
            ctx.cancel_future(h);
        }
        Running::Stop
    }
}

impl Puller {
    /// Drives every live pin this process may take and is not driving yet.
    fn adopt(&mut self, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        let db = self.deps.db.clone();
        let holder = self.deps.holder.clone();
        let load = async move { db.run(move |c| pins::adoptable(c, &holder)).await };
        ctx.spawn(load.into_actor(self).map(|res, act, ctx| match res {
            Ok(pins) => {
                let new: Vec<i64> = pins
                    .iter()
                    .map(|p| p.id)
                    .filter(|id| !act.running.contains_key(id))
                    .collect();
                if !new.is_empty() {
                    log::info!(target: "smanager::puller", "adopting {} live pin(s)", new.len());
                }
                for id in new {
                    act.drive(id, ctx);
                }
            }
            Err(e) => {
                log::error!(target: "smanager::puller", "cannot load live pins: {e}; restarting in 2 s");
                ctx.run_later(Duration::from_secs(2), |_, ctx| ctx.stop());
            }
        }));
    }
}

impl Supervised for Puller {
    fn restarting(&mut self, _: &mut Self::Context) {
        log::warn!(target: "smanager::puller", "restarting; live pins will be re-adopted");
    }
}

impl Handler<Pull> for Puller {
    type Result = ();
    fn handle(&mut self, msg: Pull, ctx: &mut Self::Context) {
        self.drive(msg.pin_id, ctx);
    }
}

impl Handler<Finished> for Puller {
    type Result = ();
    fn handle(&mut self, msg: Finished, ctx: &mut Self::Context) {
        let Finished { pin, outcome } = msg;
        let db = self.deps.db.clone();
        let policy = self.policy();
        let cid = pin.cid.clone();
        let id = pin.id;
        let result = match &outcome {
            Outcome::Pinned => "pinned",
            Outcome::Failed(_, FailKind::NoSpace) => "no_space",
            Outcome::Failed(_, FailKind::Aborted) => "aborted",
            Outcome::Failed(e, _) if e.starts_with("stalled") => "stalled",
            Outcome::Failed(e, _) if e.starts_with("timed out") => "timeout",
            Outcome::Failed(..) => "error",
        };
        let m = &crate::metrics::METRICS;
        m.pins_total.with_label_values(&[result]).inc();
        if let Some(started) = pin.started_at {
            let secs = (chrono::Utc::now() - started).num_milliseconds().max(0) as f64 / 1000.0;
            m.pin_duration_seconds.with_label_values(&[result]).observe(secs);
        }
        let lane = pin.lane;
        let started_at = pin.started_at;
        let save = async move {
            match outcome {
                Outcome::Pinned => db.run(move |c| pins::finish_ok(c, id)).await.map(|ok| (ok, None)),
                Outcome::Failed(err, kind) => {
                    let e2 = err.clone();
                    db.run(move |c| pins::finish_err(c, id, &e2, kind, &policy))
                        .await
                        .map(|st| (false, Some((err, st))))
                }
            }
        };
        ctx.spawn(save.into_actor(self).map(move |res, act, ctx| {
            act.running.remove(&id);
            match res {
                Ok((true, _)) => {
                    log::info!(target: "smanager::puller", cid = cid.as_str(), pin = id; "pinned and sealed");
                    if let Some(p) = act.peers.get() {
                        p.sealer.do_send(Pinned {
                            pin_id: id,
                            cid: cid.clone(),
                            lane,
                            started_at,
                        });
                        p.picker.do_send(CapacityFreed);
                    }
                }
                Ok((false, Some((err, status)))) => {
                    log::warn!(target: "smanager::puller", cid = cid.as_str(), pin = id; "pin failed: {err} → {}", status.map_or("unchanged".into(), |s| s.to_string()));
                    if let Some(p) = act.peers.get() {
                        p.picker.do_send(CapacityFreed);
                    }
                }
                Ok((false, None)) => {}
                Err(e) => {
                    log::error!(target: "smanager::puller", "cannot record the end of pin {id}: {e}; restarting");
                    ctx.stop();
                }
            }
        }));
    }
}

impl Handler<Abort> for Puller {
    type Result = bool;
    fn handle(&mut self, msg: Abort, ctx: &mut Self::Context) -> bool {
        let Some(handle) = self.running.remove(&msg.pin_id) else {
            return false;
        };
        if self.claiming.contains(&msg.pin_id) {
            self.aborted_claims.insert(msg.pin_id);
        }
        ctx.cancel_future(handle);
        crate::metrics::METRICS.pins_total.with_label_values(&["aborted"]).inc();
        let db = self.deps.db.clone();
        let policy = self.policy();
        let id = msg.pin_id;
        let reason = format!("aborted: {}", msg.reason);
        let save = async move {
            db.run(move |c| pins::finish_err(c, id, &reason, FailKind::Aborted, &policy))
                .await
        };
        ctx.spawn(save.into_actor(self).map(move |res, act, ctx| match res {
            Ok(_) => {
                if let Some(p) = act.peers.get() {
                    p.picker.do_send(CapacityFreed);
                }
            }
            Err(e) => {
                log::error!(target: "smanager::puller", "cannot record abort of pin {id}: {e}; restarting");
                ctx.stop();
            }
        }));
        true
    }
}

impl Handler<InFlight> for Puller {
    type Result = MessageResult<InFlight>;
    fn handle(&mut self, _: InFlight, _: &mut Self::Context) -> Self::Result {
        let mut pins: Vec<i64> = self.running.keys().copied().collect();
        pins.sort_unstable();
        MessageResult(InFlightReport {
            pins,
            starts: self.starts,
        })
    }
}

impl Handler<RestartActor> for Puller {
    type Result = ();
    fn handle(&mut self, _: RestartActor, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Shutdown> for Puller {
    type Result = ResponseActFuture<Self, ()>;
    /// Cancels running pins and hands their leases back, so the next start re-adopts them at once.
    fn handle(&mut self, _: Shutdown, ctx: &mut Self::Context) -> Self::Result {
        self.stopped = true;
        for (_, h) in self.running.drain() {
            ctx.cancel_future(h);
        }
        let db = self.deps.db.clone();
        let holder = self.deps.holder.clone();
        Box::pin(
            async move { db.run(move |c| pins::release_leases(c, &holder)).await }
                .into_actor(self)
                .map(|res, _, _| match res {
                    Ok(n) => log::info!(target: "smanager::puller", "released {n} lease(s) for the next start"),
                    Err(e) => log::warn!(target: "smanager::puller", "cannot release leases (they will expire): {e}"),
                }),
        )
    }
}
