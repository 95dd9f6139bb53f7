//! The operator's "why": `smanager explain CID` (one file: every rule with its numbers, its history and what happens
//! next) and `smanager plan` (a dry run of the next Picker round, under the current or a proposed configuration).
//! Both ask the Decision Engine ([`crate::decision`]) with a snapshot gathered exactly as the Picker gathers it, so
//! what they print is what the Picker does. Shared by the CLI and the admin API.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::actors::picker::{gather_snapshot, load_candidates};
use crate::config::Settings;
use crate::db::files::{self, FileDetail, Source};
use crate::db::{Db, DbError, FileStatus};
use crate::decision::round::{dry_run, Round};
use crate::decision::{self, Check, Decision, Outcome, Snapshot, Verdict};
use crate::sworker::{FileState, Sworker};

/// One dated line of a file's history.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What happened, in words.
    pub what: String,
}

/// Everything `explain` knows about one file.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    /// The file with its owners, pins and cleanups, as stored.
    pub detail: FileDetail,
    /// `new_order` or `scanned`: which rules apply.
    pub source: &'static str,
    /// The round's gates under the current snapshot.
    pub gates: Vec<Check>,
    /// The engine's decision on this file now, with every rule's numbers.
    pub decision: Decision,
    /// The group slot as TypeScript computes it: the number's hex digits, the member count and our index.
    pub group_number_hex: Option<String>,
    /// What the sWorker says about the CID (`valid`, `lost`, `pending`, `unknown`), when it answered.
    pub sworker_state: Option<String>,
    /// Inputs that could not be read; the rules that need them report `unknown`.
    pub unavailable: Vec<String>,
    /// Indexing, every pin attempt, seal progress, close and cleanup, oldest first.
    pub history: Vec<HistoryEntry>,
    /// What happens next and when.
    pub next: String,
    /// The snapshot the decision was made against.
    pub snapshot: Snapshot,
}

fn unavailable(snap: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    if snap.capacity.is_none() {
        out.push("sWorker workload (capacity, SRD ratio)".to_string());
    }
    if snap.group.is_none() {
        out.push("group membership (not read from the chain yet)".to_string());
    }
    if snap.node_count.is_none() {
        out.push("live node count (not read from the chain yet)".to_string());
    }
    if snap.head_number.is_none() {
        out.push("chain head (no block indexed yet)".to_string());
    }
    out
}

/// Explains one file; `None` when the database does not know the CID.
pub async fn explain(
    db: &Db,
    settings: &Settings,
    sworker: &dyn Sworker,
    cid: &str,
) -> Result<Option<Explanation>, DbError> {
    let c2 = cid.to_string();
    let Some(detail) = db.run(move |c| files::detail(c, &c2)).await? else {
        return Ok(None);
    };
    let snap = gather_snapshot(db, sworker).await?;
    let mut missing = unavailable(&snap);
    let (sworker_state, sworker_error) = match sworker.file_info(cid).await {
        Ok(Some(FileState::Valid { size })) => (Some(format!("valid ({size} bytes)")), None),
        Ok(Some(FileState::Lost { .. })) => (Some("lost".to_string()), None),
        Ok(Some(FileState::Pending { sealed_bytes })) => (Some(format!("pending ({sealed_bytes} bytes sealed)")), None),
        Ok(None) => (Some("unknown to the sWorker".to_string()), None),
        Err(e) => (None, Some(format!("sWorker file/info ({e})"))),
    };
    missing.extend(sworker_error);
    let source = if detail.file.seen_by_event {
        Source::Events
    } else {
        Source::Scan
    };
    let gates = decision::readiness(settings, &snap);
    let decision = decision::decide(settings, source, &detail.file, &snap);
    let history = history(&detail);
    let next = next_step(settings, &detail, &gates, &decision);
    Ok(Some(Explanation {
        source: match source {
            Source::Events => "new_order",
            Source::Scan => "scanned",
        },
        group_number_hex: decision::cid_group_hex(cid),
        gates,
        decision,
        sworker_state,
        unavailable: missing,
        history,
        next,
        snapshot: snap,
        detail,
    }))
}

fn history(d: &FileDetail) -> Vec<HistoryEntry> {
    let f = &d.file;
    let mut h = vec![HistoryEntry {
        at: f.created_at,
        what: match (f.seen_by_event, f.first_seen_block) {
            (true, Some(b)) => format!("indexed from an order at block {b}"),
            (true, None) => "indexed from an order".to_string(),
            (false, _) => "indexed by the FilesV2 scanner".to_string(),
        },
    }];
    if f.pursued_since > f.created_at + chrono::Duration::seconds(1) {
        h.push(HistoryEntry {
            at: f.pursued_since,
            what: "pursued again (a new order, or an operator retry)".to_string(),
        });
    }
    for o in &d.owners {
        h.push(HistoryEntry {
            at: f.created_at,
            what: format!(
                "ordered by {} ({} order(s), blocks {}–{})",
                o.owner, o.orders, o.first_block, o.last_block
            ),
        });
    }
    for p in &d.pins {
        h.push(HistoryEntry {
            at: p.created_at,
            what: format!(
                "pin #{} attempt {} queued in the {} lane",
                p.id,
                p.attempt,
                p.lane.as_str()
            ),
        });
        if let Some(t) = p.started_at {
            h.push(HistoryEntry {
                at: t,
                what: format!("pin #{} started", p.id),
            });
        }
        let progress = if p.size_bytes > 0 {
            format!(
                ", {} of {} sealed",
                decision::human_bytes(p.sealed_bytes.max(0) as u64),
                decision::human_bytes(p.size_bytes as u64)
            )
        } else {
            String::new()
        };
        let end = p.finished_at.unwrap_or(p.updated_at);
        h.push(HistoryEntry {
            at: end,
            what: format!(
                "pin #{} {}{}{}",
                p.id,
                p.status.as_str(),
                progress,
                p.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
            ),
        });
    }
    for c in &d.cleanups {
        h.push(HistoryEntry {
            at: c.created_at,
            what: format!("cleanup #{} queued ({})", c.id, c.reason),
        });
        h.push(HistoryEntry {
            at: c.done_at.unwrap_or(c.updated_at),
            what: format!(
                "cleanup #{} {} after {} attempt(s){}",
                c.id,
                c.status,
                c.attempts,
                c.last_error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
            ),
        });
    }
    if let Some(r) = &f.status_reason {
        h.push(HistoryEntry {
            at: f.updated_at,
            what: format!("{}: {r}", f.status),
        });
    }
    h.sort_by_key(|e| e.at);
    h
}

fn next_step(settings: &Settings, d: &FileDetail, gates: &[Check], decision: &Decision) -> String {
    let f = &d.file;
    let when = |t: Option<DateTime<Utc>>| {
        t.map_or("on the next round".to_string(), |t| {
            if t <= Utc::now() {
                "on the next round (due now)".to_string()
            } else {
                format!(
                    "at {} (in {} min)",
                    t.to_rfc3339(),
                    (t - Utc::now()).num_minutes().max(0)
                )
            }
        })
    };
    match f.status {
        FileStatus::New => {
            if let Some(g) = decision::not_ready(gates) {
                return format!("waits: no round runs until this gate passes: {g}");
            }
            let tick = settings.scheduler.tick_secs;
            match &decision.verdict {
                Verdict::Pick { lane } => format!(
                    "will be picked in the {} lane by the next round (within {tick} s) unless better-ranked files fill it",
                    lane.as_str()
                ),
                Verdict::Skip { reason } => format!("will be skipped by the next round: {reason}"),
                Verdict::Invalid { reason } => format!("will be recorded as invalid by the next round: {reason}"),
                Verdict::PendingReplica => {
                    "will wait for a replica on chain (rechecked every 30 min) by the next round".to_string()
                }
                Verdict::NoSpace { reason } => format!("will wait for space by the next round: {reason}"),
                Verdict::LaneFull => "stays new until its lane has a free slot".to_string(),
            }
        }
        FileStatus::Skipped => "stays skipped until a new order for it arrives".to_string(),
        FileStatus::PendingReplica | FileStatus::InsufficientSpace | FileStatus::PinError => {
            format!("back in the queue {}", when(f.next_attempt_at))
        }
        FileStatus::Queued => "waits for a Puller slot (its lane and bytes are reserved)".to_string(),
        FileStatus::Pinning => "being pulled; the sWorker seals blocks as they arrive".to_string(),
        FileStatus::Sealed => format!(
            "kept until its order closes (expires at block {}); then it is deleted",
            f.expired_at
        ),
        FileStatus::Failed => "given up; `smanager retry CID` (or a new order) brings it back".to_string(),
        FileStatus::Invalid => "never pulled unless a new order arrives for it".to_string(),
        FileStatus::Closed => match d.cleanups.iter().rev().find(|c| c.done_at.is_none()) {
            Some(c) => format!(
                "deletion pending (cleanup #{}, next try {})",
                c.id,
                c.next_attempt_at.to_rfc3339()
            ),
            None => "closed on chain; nothing left to delete".to_string(),
        },
        FileStatus::Cleaned => "deleted; a new order would pull it again".to_string(),
    }
}

/// One file a plan would take.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedPick {
    /// The CID.
    pub cid: String,
    /// `new_order` or `scanned`.
    pub source: &'static str,
    /// The lane it would use.
    pub lane: &'static str,
    /// Its size in bytes.
    pub size_bytes: i64,
}

/// A dry run of the next round.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Seed of the strategy draws (replay with the same seed for the same order).
    pub seed: u64,
    /// Why no round would run, if a gate fails.
    pub not_ready: Option<String>,
    /// The gates with their numbers.
    pub gates: Vec<Check>,
    /// The files it would take, in order.
    pub take: Vec<PlannedPick>,
    /// Files it would not take, counted by the rule that decides (`group_slot`, `probability`, `space`, …).
    pub skip_by_rule: BTreeMap<String, u64>,
    /// Candidates judged.
    pub judged: usize,
}

/// Plans the next round under `settings` (the current configuration, or a proposed one), without side effects.
pub async fn plan(
    db: &Db,
    settings: &Settings,
    sworker: &dyn Sworker,
    limit: usize,
    seed: u64,
) -> Result<Plan, DbError> {
    let snap = gather_snapshot(db, sworker).await?;
    let gates = decision::readiness(settings, &snap);
    let mut out = Plan {
        seed,
        not_ready: decision::not_ready(&gates),
        gates,
        take: Vec::new(),
        skip_by_rule: BTreeMap::new(),
        judged: 0,
    };
    if out.not_ready.is_some() {
        return Ok(out);
    }
    let batch = i64::try_from(limit.max(1))
        .unwrap_or(i64::MAX)
        .max(i64::from(settings.scheduler.batch_size));
    let candidates = load_candidates(db, &settings.scheduler, &snap.usage, batch).await?;
    let mut round = Round::new(settings, snap, candidates, seed);
    for (source, file, d) in dry_run(&mut round, usize::MAX) {
        out.judged += 1;
        match d.verdict {
            Verdict::Pick { lane } => {
                if out.take.len() < limit {
                    out.take.push(PlannedPick {
                        cid: file.cid,
                        source: match source {
                            Source::Events => "new_order",
                            Source::Scan => "scanned",
                        },
                        lane: lane.as_str(),
                        size_bytes: file.size_bytes,
                    });
                }
            }
            _ => {
                let rule = d
                    .checks
                    .iter()
                    .find(|c| c.outcome == Outcome::Fail)
                    .map_or("other", |c| c.rule);
                *out.skip_by_rule.entry(rule.to_string()).or_default() += 1;
            }
        }
    }
    Ok(out)
}

/// Text for a terminal.
pub fn render_explanation(e: &Explanation) -> String {
    use std::fmt::Write as _;
    let f = &e.detail.file;
    let mut s = String::new();
    let _ = writeln!(s, "cid      {}", f.cid);
    let _ = writeln!(
        s,
        "status   {}{}",
        f.status,
        f.status_reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        s,
        "facts    {} ({}), tips {}, amount {}, {} replicas, expires at block {}",
        decision::human_bytes(f.size_bytes.max(0) as u64),
        e.source,
        f.tips,
        f.amount,
        f.replicas,
        f.expired_at
    );
    if let Some(st) = &e.sworker_state {
        let _ = writeln!(s, "sworker  {st}");
    }
    let _ = writeln!(s, "\ngates (the whole round):");
    for c in &e.gates {
        let _ = writeln!(s, "  {:<5} {:<12} {}", mark(c.outcome), c.rule, c.detail);
    }
    let _ = writeln!(s, "\nrules (in order; the first failure decides):");
    for c in &e.decision.checks {
        let _ = writeln!(s, "  {:<5} {:<12} {}", mark(c.outcome), c.rule, c.detail);
    }
    let _ = writeln!(s, "verdict  {}", verdict_text(&e.decision.verdict));
    if !e.unavailable.is_empty() {
        let _ = writeln!(s, "unavailable inputs: {}", e.unavailable.join("; "));
    }
    let _ = writeln!(s, "\nhistory:");
    for h in &e.history {
        let _ = writeln!(s, "  {}  {}", h.at.format("%Y-%m-%d %H:%M:%S"), h.what);
    }
    let _ = writeln!(s, "\nnext     {}", e.next);
    s
}

/// Text for a terminal.
pub fn render_plan(p: &Plan) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    if let Some(why) = &p.not_ready {
        let _ = writeln!(s, "no round would run: {why}");
        return s;
    }
    let _ = writeln!(s, "next round (seed {}), {} candidates judged:", p.seed, p.judged);
    if p.take.is_empty() {
        let _ = writeln!(s, "  would take nothing");
    }
    for (i, t) in p.take.iter().enumerate() {
        let _ = writeln!(
            s,
            "  {:>3}. {:<62} {:<9} {:<5} {}",
            i + 1,
            t.cid,
            t.source,
            t.lane,
            decision::human_bytes(t.size_bytes.max(0) as u64)
        );
    }
    if !p.skip_by_rule.is_empty() {
        let _ = writeln!(s, "would not take, by deciding rule:");
        for (rule, n) in &p.skip_by_rule {
            let _ = writeln!(s, "  {rule:<12} {n}");
        }
    }
    s
}

fn mark(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "FAIL",
        Outcome::NotApplicable => "n/a",
        Outcome::Unknown => "?",
    }
}

/// A verdict in words.
pub fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Pick { lane } => format!("pick (lane {})", lane.as_str()),
        Verdict::Skip { reason } => format!("skip: {reason}"),
        Verdict::Invalid { reason } => format!("invalid: {reason}"),
        Verdict::PendingReplica => "wait for a replica".to_string(),
        Verdict::NoSpace { reason } => format!("wait for space: {reason}"),
        Verdict::LaneFull => "wait: lane full".to_string(),
    }
}
