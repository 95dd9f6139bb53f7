//! Picker: runs the Decision Engine ([`crate::decision`]) and acts on its verdicts. Plumbing, not policy.
//!
//! A round runs when orders arrive, when capacity frees and on a slow tick (for retries and sWorker changes); never
//! on a fixed sleep between picks. It releases waiting files whose time has come, gathers a [`Snapshot`], asks the
//! engine's readiness gates, then walks the engine's [`Round`] over the candidates and records each verdict; for a
//! pick it reserves a lane slot and the file's bytes (`new → queued` plus a live pin row, in one transaction) before
//! telling the Puller.

use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;

use super::indexer::FilesIndexed;
use super::puller::Pull;
use super::{Deps, RestartActor, SharedPeers, Shutdown};
use crate::config::SchedulerSettings;
use crate::db::files::{self, Source};
use crate::db::pins::{self, LaneUsage};
use crate::db::state::{self, ChainHead, GroupInfo};
use crate::db::{Db, DbError, FileStatus, Lane};
use crate::decision::round::{Candidates, Round};
use crate::decision::{self, Capacity, Snapshot, Verdict};
use crate::sworker::FileState;

/// A live pin ended (sealed, failed or aborted): a lane slot and its bytes are free again.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct CapacityFreed;

/// Operator switch: stop or resume admitting new work (persisted, so it survives restarts).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<(), String>")]
pub struct SetPaused(pub bool);

/// The result of the last round, for status output and tests.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "PickerStats")]
pub struct GetStats;

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PickerStats {
    pub rounds: u64,
    pub picked: u64,
    /// Files found already sealed in the sWorker, recorded without a pull.
    pub already_stored: u64,
    pub skipped: u64,
    pub not_ready: u64,
    pub starts: u32,
}

/// Acts on the Decision Engine's verdicts when capacity frees or orders arrive.
pub struct Picker {
    deps: Deps,
    started: std::time::Instant,
    peers: SharedPeers,
    running: bool,
    again: bool,
    stopped: bool,
    stats: PickerStats,
}

impl Picker {
    /// Builds the actor; it reads its queue from PostgreSQL on every round, so a restart loses nothing.
    pub fn new(deps: Deps, peers: SharedPeers) -> Self {
        Picker {
            deps,
            started: std::time::Instant::now(),
            peers,
            running: false,
            again: false,
            stopped: false,
            stats: PickerStats::default(),
        }
    }

    /// Starts a round unless one is running; a wake-up during a round schedules another right after it.
    fn wake(&mut self, ctx: &mut Context<Self>) {
        if self.stopped {
            return;
        }
        if self.running {
            self.again = true;
            return;
        }
        self.running = true;
        self.again = false;
        let fut = round(self.deps.clone(), self.peers.clone());
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            act.running = false;
            act.stats.rounds += 1;
            match res {
                Ok(r) => {
                    act.stats.picked += r.picked as u64;
                    act.stats.already_stored += r.already_stored as u64;
                    act.stats.skipped += r.judged.saturating_sub(r.picked + r.already_stored) as u64;
                    if let Some(why) = &r.not_ready {
                        act.stats.not_ready += 1;
                        log::debug!(target: "smanager::picker", "not picking: {why}");
                    }
                    // Keep going while there is work and room: no sleeps between picks.
                    if act.again || r.more {
                        ctx.notify(Wake);
                    }
                }
                Err(e) => {
                    log::error!(target: "smanager::picker", "round failed, restarting: {e}");
                    ctx.stop();
                }
            }
        }));
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Wake;

impl Actor for Picker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.stats.starts += 1;
        self.running = false;
        let tick = Duration::from_secs(self.deps.settings.scheduler.tick_secs);
        ctx.run_interval(tick, |act, ctx| act.wake(ctx));
        if let Some(sc) = self.deps.settings.seal_coordinator.clone() {
            ctx.spawn(
                async move {
                    match crate::coordinator::SealCoordinator::new(&sc).ping().await {
                        Ok(()) => log::info!(target: "smanager::picker", "seal coordinator {} answers", sc.end_point),
                        Err(e) => log::warn!(target: "smanager::picker", "seal coordinator {}: {e}", sc.end_point),
                    }
                }
                .into_actor(self),
            );
        }
        let t = &self.deps.settings.telemetry;
        if !t.end_point.is_empty() {
            ctx.run_interval(Duration::from_secs(t.interval_secs.max(1)), |act, ctx| {
                let deps = act.deps.clone();
                let started = act.started;
                ctx.spawn(crate::telemetry::report(deps, started).into_actor(act));
            });
        }
        ctx.notify(Wake);
    }
}

impl Supervised for Picker {
    fn restarting(&mut self, _: &mut Self::Context) {
        log::warn!(target: "smanager::picker", "restarting; lane usage is reloaded from PostgreSQL");
    }
}

impl Handler<Wake> for Picker {
    type Result = ();
    fn handle(&mut self, _: Wake, ctx: &mut Self::Context) {
        self.wake(ctx);
    }
}

impl Handler<FilesIndexed> for Picker {
    type Result = ();
    fn handle(&mut self, _: FilesIndexed, ctx: &mut Self::Context) {
        self.wake(ctx);
    }
}

impl Handler<CapacityFreed> for Picker {
    type Result = ();
    fn handle(&mut self, _: CapacityFreed, ctx: &mut Self::Context) {
        self.wake(ctx);
    }
}

impl Handler<SetPaused> for Picker {
    type Result = ResponseActFuture<Self, Result<(), String>>;
    fn handle(&mut self, msg: SetPaused, _: &mut Self::Context) -> Self::Result {
        let db = self.deps.db.clone();
        let fut = async move {
            db.run(move |c| state::kv_set(c, state::KV_PICKING_PAUSED, &msg.0))
                .await
        };
        Box::pin(fut.into_actor(self).map(move |res, act, ctx| {
            if !msg.0 {
                act.wake(ctx);
            }
            res.map_err(|e| e.to_string())
        }))
    }
}

impl Handler<GetStats> for Picker {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.stats)
    }
}

impl Handler<RestartActor> for Picker {
    type Result = ();
    fn handle(&mut self, _: RestartActor, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

impl Handler<Shutdown> for Picker {
    type Result = ();
    /// Stops admitting work; reservations already made stay in PostgreSQL for the next start.
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) {
        self.stopped = true;
    }
}

/// What a round did.
#[derive(Debug, Default)]
struct RoundReport {
    picked: usize,
    judged: usize,
    /// Candidates the sWorker already held, recorded as sealed without a pull.
    already_stored: usize,
    not_ready: Option<String>,
    /// Candidates may remain and a lane has room: run again at once.
    more: bool,
}

/// The snapshot the Decision Engine judges against: group, node count, head and lanes from PostgreSQL, capacity
/// from the sWorker (`None` when it does not answer). Also used by `smanager explain` and `plan`.
pub async fn gather_snapshot(db: &Db, sworker: &dyn crate::sworker::Sworker) -> Result<Snapshot, DbError> {
    let (paused, group, head, usage, node_count) = db
        .run(move |c| {
            let paused: bool = state::kv_get(c, state::KV_PICKING_PAUSED)?.unwrap_or(false);
            let group: Option<GroupInfo> = state::kv_get(c, state::KV_GROUP)?;
            let head: Option<ChainHead> = state::kv_get(c, state::KV_CHAIN_HEAD)?;
            let nodes: Option<u64> = state::kv_get(c, state::KV_NODE_COUNT)?;
            let usage = pins::lane_usage(c)?;
            Ok((paused, group, head, usage, nodes))
        })
        .await?;
    let capacity = match sworker.workload().await {
        Ok(w) => Some(Capacity {
            free_bytes: w.free_bytes(),
            sys_free_bytes: w.sys_free_bytes(),
            srd_ratio: w.srd_ratio(),
        }),
        Err(e) => {
            log::debug!(target: "smanager::picker", "sWorker workload: {e}");
            None
        }
    };
    Ok(Snapshot {
        paused,
        group,
        node_count,
        head_number: head.map(|h| h.number),
        capacity,
        usage,
        now: Utc::now(),
    })
}

/// Up to `batch` candidates per source and lane, in ranking order; a lane without room is not read.
pub async fn load_candidates(
    db: &Db,
    s: &SchedulerSettings,
    usage: &LaneUsage,
    batch: i64,
) -> Result<Candidates, DbError> {
    let rank = s.rank_by;
    let large_from = decision::large_threshold(s);
    let (small_cap, large_cap) = decision::lane_caps(s);
    // A closed large lane (largeLanePercent 0) is still read, so its files are skipped with a reason.
    let read_large = large_cap == 0 || usage.large < large_cap;
    let read_small = usage.small < small_cap;
    db.run(move |c| {
        let mut out = Candidates::default();
        if read_small {
            out.events_small = files::candidates(c, Source::Events, Lane::Small, large_from, rank, batch)?;
            out.scan_small = files::candidates(c, Source::Scan, Lane::Small, large_from, rank, batch)?;
        }
        if read_large {
            out.events_large = files::candidates(c, Source::Events, Lane::Large, large_from, rank, batch)?;
            out.scan_large = files::candidates(c, Source::Scan, Lane::Large, large_from, rank, batch)?;
        }
        Ok(out)
    })
    .await
}

/// `Some("valid"|"lost")` when the sWorker already holds the file, as the TypeScript manager checks before pulling
/// (a lost file counts as handled there too). An unreachable sWorker or an odd answer means "not known": pull it.
async fn already_stored(sworker: &dyn crate::sworker::Sworker, cid: &str) -> Option<&'static str> {
    match sworker.file_info(cid).await {
        Ok(Some(FileState::Valid { .. })) => Some("valid"),
        Ok(Some(FileState::Lost { .. })) => Some("lost"),
        Ok(_) => None,
        Err(e) => {
            log::debug!(target: "smanager::picker", cid = cid; "file/info before pulling failed: {e}");
            None
        }
    }
}

/// The Crust wiki's real-size check: a DAG larger than its order (beyond `scheduler.sizeMarginPercent`) would be
/// closed as illegal after sealing, wasting the space. `Some(reason)` when it is; an unreadable size (IPFS slow, the
/// DAG not reachable in `scheduler.sizeCheckTimeoutSecs`) never blocks the pull.
async fn real_size_exceeds(deps: &Deps, file: &crate::db::File) -> Option<String> {
    let s = &deps.settings.scheduler;
    if s.size_check_timeout_secs == 0 {
        return None;
    }
    let timeout = Duration::from_secs(s.size_check_timeout_secs);
    let real = match actix_rt::time::timeout(
        timeout + Duration::from_secs(1),
        deps.ipfs.cumulative_size(&file.cid, timeout),
    )
    .await
    {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            log::debug!(target: "smanager::picker", cid = file.cid.as_str(); "real size unknown, pulling anyway: {e}");
            return None;
        }
        Err(_) => return None,
    };
    let ordered = u64::try_from(file.size_bytes).unwrap_or(0);
    let limit = ordered.saturating_add(ordered.saturating_mul(u64::from(s.size_margin_percent)) / 100);
    (real > limit).then(|| {
        format!(
            "real size {} exceeds the ordered {} by more than sizeMarginPercent {}%",
            real, ordered, s.size_margin_percent
        )
    })
}

async fn round(deps: Deps, peers: SharedPeers) -> Result<RoundReport, DbError> {
    let settings = deps.settings.clone();
    let s = &settings.scheduler;
    let give_up_days = settings.retry.give_up_days;
    let (released, gave_up) = deps
        .db
        .run(move |c| Ok((files::release_due(c)?, files::give_up_stale(c, give_up_days)?)))
        .await?;
    if released > 0 || gave_up > 0 {
        log::info!(target: "smanager::picker", "{released} waiting file(s) back in the queue, {gave_up} given up");
    }
    let mut report = RoundReport::default();
    let snap = gather_snapshot(&deps.db, deps.sworker.as_ref()).await?;
    let m = &crate::metrics::METRICS;
    if let Some(c) = &snap.capacity {
        m.free_bytes
            .with_label_values(&["sworker"])
            .set(i64::try_from(c.free_bytes).unwrap_or(i64::MAX));
        m.free_bytes
            .with_label_values(&["sys"])
            .set(i64::try_from(c.sys_free_bytes).unwrap_or(i64::MAX));
    }
    let gates = decision::readiness(&settings, &snap);
    if let Some(why) = decision::not_ready(&gates) {
        if why.contains("group owner") {
            log::error!(target: "smanager::picker", "configuration error: chain.account {} is a group owner, which cannot store files", settings.chain.account);
        }
        report.not_ready = Some(why);
        return Ok(report);
    }

    let batch = i64::from(s.batch_size);
    let candidates = load_candidates(&deps.db, s, &snap.usage, batch).await?;
    let fetched_full = [
        &candidates.events_small,
        &candidates.events_large,
        &candidates.scan_small,
        &candidates.scan_large,
    ]
    .iter()
    .any(|v| v.len() as i64 == batch);
    let mut walk = Round::new(&settings, snap, candidates, rand::random());
    let coordinator = settings
        .seal_coordinator
        .as_ref()
        .map(crate::coordinator::SealCoordinator::new);

    while let Some((source, file, decision)) = walk.next_candidate() {
        report.judged += 1;
        let cid = file.cid.clone();
        let verdict = decision.verdict;
        // A file that passed the filters may already be in the sWorker (sealed by the TypeScript manager before a
        // migration, or by a pin whose outcome was lost): record it as sealed instead of pulling it again or
        // reserving space for it. A file without space is not probed: a full node would ask about every candidate
        // every round; it is probed when space allows a pick.
        if matches!(verdict, Verdict::Pick { .. }) {
            if let Some(how) = already_stored(deps.sworker.as_ref(), &cid).await {
                let c2 = cid.clone();
                let reason = format!("already {how} in the sWorker");
                deps.db
                    .run(move |c| {
                        files::transition(c, &c2, &[FileStatus::New], FileStatus::Sealed, Some(&reason), None)
                    })
                    .await?;
                report.already_stored += 1;
                log::info!(target: "smanager::picker", cid = cid.as_str(); "already {how} in the sWorker: not pulled");
                continue;
            }
        }
        let verdict = match verdict {
            Verdict::Pick { .. } => match real_size_exceeds(&deps, &file).await {
                Some(reason) => Verdict::Skip { reason },
                None => verdict,
            },
            other => other,
        };
        let (status, reason, next) = match verdict {
            Verdict::Pick { lane } => {
                // A shared seal coordinator may veto the pull or postpone all pulls (`pullDisabled`: the file stays
                // `new`); unreachable or failing, it is advice we go without.
                if let Some(coord) = &coordinator {
                    match coord.mark_seal(&cid).await {
                        Ok(d) if d.seal => {}
                        Ok(d) if d.pull_disabled() => {
                            report.not_ready = Some("seal coordinator: pulls disabled for this node".into());
                            break;
                        }
                        Ok(d) => {
                            let reason = format!("seal coordinator: {}", d.reason);
                            let c2 = cid.clone();
                            deps.db
                                .run(move |c| {
                                    files::transition(
                                        c,
                                        &c2,
                                        &[FileStatus::New],
                                        FileStatus::Skipped,
                                        Some(&reason),
                                        None,
                                    )
                                })
                                .await?;
                            continue;
                        }
                        Err(e) => crate::coordinator::record_failure("mark_seal", &e),
                    }
                }
                let size = file.size_bytes;
                let c2 = cid.clone();
                let pin = deps.db.run(move |c| files::queue_pin(c, &c2, lane, size)).await?;
                if let Some(pin) = pin {
                    report.picked += 1;
                    walk.took(lane, size);
                    log::info!(target: "smanager::picker", cid = cid.as_str(), lane = lane.as_str(), size = size; "picked");
                    if let Some(p) = peers.get() {
                        p.puller.do_send(Pull { pin_id: pin.id });
                    }
                }
                continue;
            }
            Verdict::LaneFull => {
                report.judged -= 1;
                continue;
            }
            Verdict::Skip { reason } => (FileStatus::Skipped, Some(reason), None),
            Verdict::Invalid { reason } => (FileStatus::Invalid, Some(reason), None),
            Verdict::PendingReplica => (
                FileStatus::PendingReplica,
                Some("no replica yet".to_string()),
                Some(Utc::now() + chrono::Duration::seconds(decision::PENDING_REPLICA_RECHECK_SECS)),
            ),
            Verdict::NoSpace { reason } => {
                let r = &settings.retry;
                let policy = crate::db::pins::RetryPolicy {
                    base_delay_secs: r.base_delay_secs,
                    max_delay_secs: r.max_delay_secs,
                    max_attempts: r.max_attempts,
                };
                deps.db
                    .run(move |c| files::record_space_wait(c, &cid, source, &reason, &policy))
                    .await?;
                continue;
            }
        };
        deps.db
            .run(move |c| files::record_verdict(c, &cid, source, status, reason.as_deref(), next))
            .await?;
    }
    report.more = report.picked + report.already_stored > 0 && fetched_full && walk.has_room();
    Ok(report)
}
