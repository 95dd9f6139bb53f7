//! Picker, the decision engine: chooses which indexed files this node stores, and when.
//!
//! A round runs when orders arrive, when capacity frees and on a slow tick (for retries and sWorker changes); never
//! on a fixed sleep between picks. It releases waiting files whose time has come, checks the readiness gates (group,
//! sWorker, SRD ratio, system disk), then draws candidates by strategy weight, judges each against the filters, and
//! reserves a lane slot and the file's bytes for the ones it takes (`new → queued` plus a live pin row, in one
//! transaction) before telling the Puller.

use std::time::Duration;

use actix::prelude::*;
use chrono::Utc;
use rand::{Rng, SeedableRng};

use super::indexer::FilesIndexed;
use super::puller::Pull;
use super::{Deps, RestartActor, SharedPeers, Shutdown};
use crate::config::{SchedulerSettings, Settings};
use crate::db::files::{self, Source};
use crate::db::pins::{self, LaneUsage};
use crate::db::state::{self, ChainHead, GroupInfo};
use crate::db::{DbError, File, FileStatus, Lane};
use crate::sworker::FileState;

/// Crust block time, used to turn block numbers into remaining lifetime.
pub const BLOCK_SECS: i64 = 6;
/// How long a scanned file without replicas waits before it is looked at again (the TypeScript manager's 30 min).
const PENDING_REPLICA_RECHECK_SECS: i64 = 30 * 60;

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

/// The decision engine: chooses which indexed files this node pulls, when capacity frees or orders arrive.
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

/// Everything a round judges candidates against.
#[derive(Debug, Clone)]
pub struct PickContext {
    pub group: GroupInfo,
    /// Live nodes on the network (work reports in the last half slot), when known.
    pub node_count: Option<u64>,
    pub head: Option<ChainHead>,
    pub free_bytes: u64,
    pub reserved_bytes: u64,
    pub usage: LaneUsage,
}

/// The judgement on one candidate.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Pull it, in this lane.
    Pick(Lane),
    /// Not for this node (reason recorded as `skipped`).
    Skip(String),
    /// Cannot be stored at all (recorded as `invalid`).
    Invalid(String),
    /// No replica on chain yet: checked again later.
    PendingReplica,
    /// Not enough space in the sWorker or on the system disk right now.
    NoSpace,
    /// The lane is full: leave the file `new` for a later round.
    LaneFull,
}

/// Lane slots: `maxPendingTasks` split by `largeLanePercent` (40 % for files ≥ 5 GiB by default).
pub fn lane_caps(s: &SchedulerSettings) -> (i64, i64) {
    let total = i64::from(s.max_pending_tasks);
    let mut large = total * i64::from(s.large_lane_percent) / 100;
    if s.large_lane_percent > 0 {
        large = large.max(1);
    }
    let small = (total - large).max(1);
    (small, large)
}

/// The lane a file of `size` bytes belongs to.
pub fn lane_of(s: &SchedulerSettings, size: i64) -> Lane {
    if size >= (s.large_file_size_mb as i64).saturating_mul(1024 * 1024) {
        Lane::Large
    } else {
        Lane::Small
    }
}

/// The number the TypeScript manager assigns a CID, as hex digits: `BigNumber('0x' + cidV1.toString('base16'))`,
/// where multibase base16 text starts with the prefix `f`, so the number is `0xf` followed by the CIDv1 bytes.
/// Members of one group may run either manager, so the slot must be computed exactly as TypeScript does.
pub fn cid_group_hex(cid: &str) -> Option<String> {
    let v1 = cid::Cid::try_from(cid).ok()?.into_v1().ok()?;
    Some(format!("f{}", hex::encode(v1.to_bytes())))
}

/// The group slot of a CID among `m` members: TypeScript's number ([`cid_group_hex`]) modulo `m`.
pub fn cid_mod(cid: &str, m: u64) -> Option<u64> {
    if m == 0 {
        return None;
    }
    let digits = cid_group_hex(cid)?;
    let m = u128::from(m);
    let mut r: u128 = 0;
    for d in digits.chars() {
        r = (r * 16 + u128::from(d.to_digit(16)?)) % m;
    }
    u64::try_from(r).ok()
}

/// Whether the CID falls in the accepted `share` (0–1). The draw is deterministic for one `seed` (so a file gets the
/// same answer every round and after restarts) but independent between seeds, so different groups in the network
/// take different files; a draw from the CID alone would make every node accept and refuse the same ones.
pub fn probability_accepts(seed: &str, cid: &str, share: f64) -> bool {
    if share >= 1.0 {
        return true;
    }
    let mut input = Vec::with_capacity(seed.len() + 1 + cid.len());
    input.extend_from_slice(seed.as_bytes());
    input.push(0);
    input.extend_from_slice(cid.as_bytes());
    let h = sp_crypto_hashing::blake2_128(&input);
    let x = u64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) % 1_000_000;
    (x as f64) < share * 1_000_000.0
}

/// Judges one candidate. Pure, so every rule is unit-tested.
pub fn judge(settings: &Settings, source: Source, file: &File, ctx: &PickContext) -> Verdict {
    let s = &settings.scheduler;
    // Group slot: members split the CIDs between them.
    let members = ctx.group.members.len() as u64;
    if members > 0 {
        let Some(index) = ctx.group.node_index else {
            return Verdict::Skip("not a member of the group".into());
        };
        match cid_mod(&file.cid, members) {
            None => return Verdict::Invalid("not a valid CID".into()),
            Some(slot) if slot != u64::from(index) => {
                return Verdict::Skip(format!("group slot {slot} belongs to another member"))
            }
            Some(_) => {}
        }
    } else if cid::Cid::try_from(file.cid.as_str()).is_err() {
        return Verdict::Invalid("not a valid CID".into());
    }
    // Probability, for new orders only (as in the TypeScript manager): with `node_count` live nodes a group takes a
    // file with probability targetReplicas × members / nodes. The draw is seeded by the group (or, alone, by this
    // account), so one group answers the same every time and different groups take different files. An unknown
    // or zero node count does not filter (the TypeScript manager then refused every new order).
    if let (Source::Events, Some(nodes), true) = (source, ctx.node_count, s.target_replicas > 0) {
        if nodes > 0 {
            let share = (f64::from(s.target_replicas) * members.max(1) as f64 / nodes as f64).min(1.0);
            let seed = ctx.group.owner.as_deref().unwrap_or(settings.chain.account.as_str());
            if !probability_accepts(seed, &file.cid, share) {
                return Verdict::Skip(format!(
                    "probability filter: {:.1}% of new orders for {nodes} live nodes and targetReplicas {}",
                    share * 100.0,
                    s.target_replicas
                ));
            }
        }
    }
    const MB: i64 = 1024 * 1024;
    if s.min_file_size > 0 && file.size_bytes < (s.min_file_size as i64).saturating_mul(MB) {
        return Verdict::Skip(format!("smaller than minFileSize {} MB", s.min_file_size));
    }
    if s.max_file_size > 0 && file.size_bytes > (s.max_file_size as i64).saturating_mul(MB) {
        return Verdict::Skip(format!("larger than maxFileSize {} MB", s.max_file_size));
    }
    if s.max_replicas > 0 && file.replicas >= s.max_replicas as i32 {
        return Verdict::Skip(format!("{} replicas ≥ maxReplicas {}", file.replicas, s.max_replicas));
    }
    let srd_first = matches!(
        s.strategy,
        crate::config::Strategy::Preset(crate::config::StrategyPreset::SrdFirst)
    );
    if source == Source::Scan && srd_first && s.min_replicas > 0 && file.replicas < s.min_replicas as i32 {
        return Verdict::Skip(format!("{} replicas < minReplicas {}", file.replicas, s.min_replicas));
    }
    if file.expired_at > 0 {
        if let Some(head) = &ctx.head {
            let remaining_secs = (file.expired_at - head.number).saturating_mul(BLOCK_SECS);
            if remaining_secs < i64::from(s.min_lifetime_days) * 86_400 {
                return Verdict::Skip(format!(
                    "expires in {} days (< minLifetimeDays {})",
                    remaining_secs.max(0) / 86_400,
                    s.min_lifetime_days
                ));
            }
        }
    } else if source == Source::Scan {
        // A scanned file nobody replicated: wait a while, then call it invalid.
        let age = Utc::now() - file.pursued_since;
        if age > chrono::Duration::days(i64::from(s.no_replica_days)) {
            return Verdict::Invalid(format!("no replica after {} days", s.no_replica_days));
        }
        return Verdict::PendingReplica;
    }
    let lane = lane_of(s, file.size_bytes);
    let (small_cap, large_cap) = lane_caps(s);
    let full = match lane {
        Lane::Small => ctx.usage.small >= small_cap,
        Lane::Large => ctx.usage.large >= large_cap,
    };
    if full {
        return Verdict::LaneFull;
    }
    let need = (file.size_bytes.max(0) as u64).saturating_add(ctx.reserved_bytes) as f64 * s.space_factor;
    if need > ctx.free_bytes as f64 {
        return Verdict::NoSpace;
    }
    Verdict::Pick(lane)
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

async fn round(deps: Deps, peers: SharedPeers) -> Result<RoundReport, DbError> {
    let settings = deps.settings.clone();
    let s = &settings.scheduler;
    let give_up_days = settings.retry.give_up_days;
    let (released, gave_up, paused, group, head, usage, node_count) = deps
        .db
        .run(move |c| {
            let released = files::release_due(c)?;
            let gave_up = files::give_up_stale(c, give_up_days)?;
            let paused: bool = state::kv_get(c, state::KV_PICKING_PAUSED)?.unwrap_or(false);
            let group: Option<GroupInfo> = state::kv_get(c, state::KV_GROUP)?;
            let head: Option<ChainHead> = state::kv_get(c, state::KV_CHAIN_HEAD)?;
            let nodes: Option<u64> = state::kv_get(c, state::KV_NODE_COUNT)?;
            let usage = pins::lane_usage(c)?;
            Ok((released, gave_up, paused, group, head, usage, nodes))
        })
        .await?;
    if released > 0 || gave_up > 0 {
        log::info!(target: "smanager::picker", "{released} waiting file(s) back in the queue, {gave_up} given up");
    }
    let mut report = RoundReport::default();
    if paused {
        report.not_ready = Some("picking is paused".into());
        return Ok(report);
    }
    // Readiness: the node must be a group member (not the owner) with a known slot.
    let group = match group {
        None => {
            report.not_ready = Some("group membership not known yet".into());
            return Ok(report);
        }
        Some(g) if g.owner.as_deref() == Some(settings.chain.account.as_str()) => {
            log::error!(target: "smanager::picker", "configuration error: chain.account {} is a group owner, which cannot store files", settings.chain.account);
            report.not_ready = Some("chain.account is a group owner".into());
            return Ok(report);
        }
        Some(g) if g.owner.is_none() || g.node_index.is_none() => {
            report.not_ready = Some("this node is not in a group".into());
            return Ok(report);
        }
        Some(g) => g,
    };
    let workload = match deps.sworker.workload().await {
        Ok(w) => w,
        Err(e) => {
            report.not_ready = Some(format!("sWorker: {e}"));
            return Ok(report);
        }
    };
    let m = &crate::metrics::METRICS;
    m.free_bytes
        .with_label_values(&["sworker"])
        .set(i64::try_from(workload.free_bytes()).unwrap_or(i64::MAX));
    m.free_bytes
        .with_label_values(&["sys"])
        .set(i64::try_from(workload.sys_free_bytes()).unwrap_or(i64::MAX));
    if workload.srd_ratio() < s.min_srd_ratio {
        report.not_ready = Some(format!(
            "SRD ratio {}% < minSrdRatio {}%",
            workload.srd_ratio(),
            s.min_srd_ratio
        ));
        return Ok(report);
    }
    if workload.sys_free_bytes() < s.min_sys_free_gib.saturating_mul(1 << 30) {
        report.not_ready = Some(format!("system disk has < {} GiB free", s.min_sys_free_gib));
        return Ok(report);
    }
    let mut ctx = PickContext {
        group,
        node_count,
        head,
        free_bytes: workload.free_bytes(),
        reserved_bytes: u64::try_from(usage.reserved_bytes).unwrap_or(0),
        usage,
    };

    let rank = s.rank_by;
    let batch = i64::from(s.batch_size);
    let (mut events, mut scanned) = deps
        .db
        .run(move |c| {
            Ok((
                files::candidates(c, Source::Events, rank, batch)?,
                files::candidates(c, Source::Scan, rank, batch)?,
            ))
        })
        .await?;
    let fetched_full = events.len() as i64 == batch || scanned.len() as i64 == batch;
    events.reverse();
    scanned.reverse();
    let w = s.strategy.weights();
    let (w_new, w_db) = (w.new_files_weight, w.db_files_weight + w.existed_files_weight);
    let mut rng = rand::rngs::StdRng::from_entropy();
    let coordinator = settings
        .seal_coordinator
        .as_ref()
        .map(crate::coordinator::SealCoordinator::new);
    let mut lanes_full = (false, false);

    loop {
        let use_events = match (events.is_empty(), scanned.is_empty()) {
            (true, true) => break,
            (false, true) => true,
            (true, false) => false,
            (false, false) => rng.gen_range(0..(w_new + w_db).max(1)) < w_new,
        };
        let (source, file) = if use_events {
            (Source::Events, events.pop())
        } else {
            (Source::Scan, scanned.pop())
        };
        let Some(file) = file else { continue };
        report.judged += 1;
        let verdict = judge(&settings, source, &file, &ctx);
        let cid = file.cid.clone();
        // A file that passed the filters may already be in the sWorker (sealed by the TypeScript manager before a
        // migration, or by a pin whose outcome was lost): record it as sealed instead of pulling it again or
        // reserving space for it.
        if matches!(verdict, Verdict::Pick(_) | Verdict::NoSpace) {
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
        let (status, reason, next) = match verdict {
            Verdict::Pick(lane) => {
                // A shared seal coordinator may veto the pull; unreachable, it stops the round (nothing is lost).
                if let Some(coord) = &coordinator {
                    match coord.mark_seal(&cid).await {
                        Ok(d) if d.seal => {}
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
                        Err(e) => {
                            report.not_ready = Some(format!("seal coordinator: {e}"));
                            break;
                        }
                    }
                }
                let size = file.size_bytes;
                let c2 = cid.clone();
                let pin = deps.db.run(move |c| files::queue_pin(c, &c2, lane, size)).await?;
                if let Some(pin) = pin {
                    report.picked += 1;
                    ctx.reserved_bytes = ctx.reserved_bytes.saturating_add(size.max(0) as u64);
                    match lane {
                        Lane::Small => ctx.usage.small += 1,
                        Lane::Large => ctx.usage.large += 1,
                    }
                    log::info!(target: "smanager::picker", cid = cid.as_str(), lane = lane.as_str(), size = size; "picked");
                    if let Some(p) = peers.get() {
                        p.puller.do_send(Pull { pin_id: pin.id });
                    }
                }
                continue;
            }
            Verdict::LaneFull => {
                match lane_of(s, file.size_bytes) {
                    Lane::Small => lanes_full.0 = true,
                    Lane::Large => lanes_full.1 = true,
                }
                report.judged -= 1;
                if lanes_full.0 && lanes_full.1 {
                    break;
                }
                continue;
            }
            Verdict::Skip(r) => (FileStatus::Skipped, Some(r), None),
            Verdict::Invalid(r) => (FileStatus::Invalid, Some(r), None),
            Verdict::PendingReplica => (
                FileStatus::PendingReplica,
                Some("no replica yet".to_string()),
                Some(Utc::now() + chrono::Duration::seconds(PENDING_REPLICA_RECHECK_SECS)),
            ),
            Verdict::NoSpace => (
                FileStatus::InsufficientSpace,
                Some(format!("needs {:.1}× its size free in the sWorker", s.space_factor)),
                Some(Utc::now() + chrono::Duration::seconds(settings.retry.base_delay_secs as i64)),
            ),
        };
        deps.db
            .run(move |c| files::record_verdict(c, &cid, source, status, reason.as_deref(), next))
            .await?;
    }
    report.more = report.picked + report.already_stored > 0 && fetched_full && !(lanes_full.0 && lanes_full.1);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bigdecimal::BigDecimal;

    fn file(cid: &str, size: i64) -> File {
        File {
            cid: cid.into(),
            size_bytes: size,
            tips: BigDecimal::from(0),
            amount: BigDecimal::from(0),
            expired_at: 0,
            replicas: 0,
            seen_by_event: true,
            seen_by_scan: false,
            first_seen_block: None,
            last_order_block: None,
            status: FileStatus::New,
            status_reason: None,
            attempts: 0,
            last_error: None,
            next_attempt_at: None,
            created_at: Utc::now(),
            pursued_since: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn ctx(members: usize, index: u32) -> PickContext {
        PickContext {
            group: GroupInfo {
                owner: Some("owner".into()),
                members: (0..members).map(|i| format!("m{i}")).collect(),
                node_index: Some(index),
                refreshed_at: None,
            },
            node_count: None,
            head: Some(ChainHead {
                number: 1000,
                hash: "0x".into(),
                timestamp_ms: None,
            }),
            free_bytes: 1 << 40,
            reserved_bytes: 0,
            usage: LaneUsage::default(),
        }
    }

    const CID: &str = "QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn";

    #[test]
    fn exactly_one_member_owns_each_cid() {
        let s = Settings::default();
        for cid in [CID, "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"] {
            let owners: Vec<u32> = (0..3)
                .filter(|i| matches!(judge(&s, Source::Events, &file(cid, 10), &ctx(3, *i)), Verdict::Pick(_)))
                .collect();
            assert_eq!(owners.len(), 1, "{cid}: {owners:?}");
            assert_eq!(Some(u64::from(owners[0])), cid_mod(cid, 3));
        }
    }

    /// Hex digits to decimal, for comparing with TypeScript's BigNumber output.
    fn hex_to_decimal(hex: &str) -> String {
        let mut digits: Vec<u32> = vec![0]; // little-endian base 10
        for h in hex.chars() {
            let mut carry = h.to_digit(16).expect("hex digit");
            for d in digits.iter_mut() {
                let v = *d * 16 + carry;
                *d = v % 10;
                carry = v / 10;
            }
            while carry > 0 {
                digits.push(carry % 10);
                carry /= 10;
            }
        }
        digits
            .iter()
            .rev()
            .map(|d| char::from_digit(*d, 10).unwrap_or('?'))
            .collect()
    }

    #[test]
    fn group_number_matches_typescript_vector() {
        // crust-smanager's own test vector (BigNumber('0x' + cidV1.toString('base16'))).
        let hex = cid_group_hex("QmY3yV46Kj4kySVUky35jhZFCwsebHm9GD9oVD4UzrqmsV").expect("cid");
        assert_eq!(
            hex_to_decimal(&hex),
            "7462641670019941206647870581808974408289101716104644620046486700662133202706398401268240"
        );
        // The `f` digit matters where 256 is not 1 modulo the group size: 7 members give slot 5, not 4.
        assert_eq!(cid_mod("QmY3yV46Kj4kySVUky35jhZFCwsebHm9GD9oVD4UzrqmsV", 7), Some(5));
        assert_eq!(cid_mod("QmY3yV46Kj4kySVUky35jhZFCwsebHm9GD9oVD4UzrqmsV", 5), Some(0));
    }

    #[test]
    fn cid_versions_share_a_slot() {
        let v0 = cid::Cid::try_from(CID).expect("cid");
        let v1 = v0.into_v1().expect("v1").to_string();
        assert_eq!(cid_mod(CID, 7), cid_mod(&v1, 7));
    }

    #[test]
    fn filters_record_reasons() {
        let mut s = Settings::default();
        s.scheduler.max_file_size = 1;
        let c = ctx(1, 0);
        assert!(
            matches!(judge(&s, Source::Events, &file(CID, 2 << 20), &c), Verdict::Skip(r) if r.contains("maxFileSize"))
        );
        assert!(matches!(
            judge(&s, Source::Events, &file("not-a-cid", 1), &c),
            Verdict::Invalid(_)
        ));
        let mut f = file(CID, 1);
        f.replicas = 100;
        assert!(matches!(judge(&s, Source::Events, &f, &c), Verdict::Skip(r) if r.contains("maxReplicas")));
        let mut f = file(CID, 1);
        f.expired_at = 1000 + 10 * 14_400; // ten days left
        assert!(matches!(judge(&s, Source::Events, &f, &c), Verdict::Skip(r) if r.contains("expires")));
        let f = file(CID, 1);
        assert_eq!(judge(&s, Source::Scan, &f, &c), Verdict::PendingReplica);
        let mut f = file(CID, 1);
        f.pursued_since = Utc::now() - chrono::Duration::days(11);
        assert!(matches!(judge(&s, Source::Scan, &f, &c), Verdict::Invalid(r) if r.contains("no replica")));
    }

    #[test]
    fn probability_filter_is_deterministic_proportional_and_per_group() {
        let s = Settings::default();
        let mut c = ctx(1, 0);
        c.node_count = Some(3000); // targetReplicas 300 → 10 % of new orders
        let cids: Vec<String> = (0..2000u64)
            .map(|i| {
                let mh = cid::multihash::Multihash::<64>::wrap(0x12, &sp_crypto_hashing::sha2_256(&i.to_le_bytes()))
                    .expect("multihash");
                cid::Cid::new_v0(mh).expect("v0").to_string()
            })
            .collect();
        let picked = |c: &PickContext, source: Source| -> Vec<usize> {
            (0..cids.len())
                .filter(|&i| matches!(judge(&s, source, &file(&cids[i], 10), c), Verdict::Pick(_)))
                .collect()
        };
        let first = picked(&c, Source::Events);
        assert!((120..=280).contains(&first.len()), "{} of 2000 at 10 %", first.len());
        assert_eq!(first, picked(&c, Source::Events), "same group, same answers");
        // Another group draws its own 10 %: the overlap is about 10 % of it, not all of it.
        let mut other = c.clone();
        other.group.owner = Some("another-owner".into());
        let theirs = picked(&other, Source::Events);
        let overlap = first.iter().filter(|i| theirs.contains(i)).count();
        assert!(
            overlap < first.len() / 2,
            "{overlap} of {} shared between groups",
            first.len()
        );
        // Files found by the scanner are not filtered by probability, as in the TypeScript manager.
        let mut scanned = file(&cids[0], 10);
        scanned.expired_at = 10_000_000;
        scanned.replicas = 50;
        let scan_skips = cids
            .iter()
            .filter(|cid| {
                let mut f = scanned.clone();
                f.cid = (*cid).clone();
                matches!(judge(&s, Source::Scan, &f, &c), Verdict::Skip(r) if r.contains("probability"))
            })
            .count();
        assert_eq!(scan_skips, 0);
        // Few nodes: every new order is taken; targetReplicas 0 turns the filter off.
        c.node_count = Some(50);
        assert_eq!(picked(&c, Source::Events).len(), cids.len());
        let mut off = s.clone();
        off.scheduler.target_replicas = 0;
        c.node_count = Some(1_000_000);
        assert!(matches!(
            judge(&off, Source::Events, &file(&cids[0], 10), &c),
            Verdict::Pick(_)
        ));
    }

    #[test]
    fn capacity_and_lanes() {
        let s = Settings::default();
        let mut c = ctx(1, 0);
        c.free_bytes = 100;
        assert_eq!(judge(&s, Source::Events, &file(CID, 50), &c), Verdict::NoSpace);
        c.free_bytes = 1 << 40;
        let (small, large) = lane_caps(&s.scheduler);
        assert_eq!((small, large), (20, 12));
        c.usage.small = small;
        assert_eq!(judge(&s, Source::Events, &file(CID, 1), &c), Verdict::LaneFull);
        assert_eq!(
            judge(&s, Source::Events, &file(CID, 6 << 30), &c),
            Verdict::Pick(Lane::Large)
        );
    }
}
