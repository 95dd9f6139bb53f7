//! The Decision Engine: which indexed files this node stores, as pure rules over a [`Snapshot`].
//!
//! The Picker actor gathers a snapshot (group, live node count, chain head, sWorker capacity, lanes in use), reads
//! candidates from the database, and asks this module; it keeps no rule of its own. `smanager explain` and
//! `smanager plan` ask the same functions, so what they print is what the Picker does.
//!
//! **Customising the policy.** Everything an operator may want to change is here and nowhere else:
//! - [`readiness`]: the gates that stop all picking (paused, group, SRD ratio, system disk);
//! - [`decide`]: the per-file rules, in the order they are evaluated; the first rule that does not pass decides the
//!   [`Verdict`], and every rule reports its numbers in a [`Check`] so `explain` can show them;
//! - [`round::Round`]: the order candidates are drawn in (strategy weights, large lane first, ranking).
//!
//! A new rule is one more `checks.push(…)` in [`decide`] with a stable `rule` name; its unit test goes next to the
//! others below. Rules shared with TypeScript members of the same group (the group slot) must stay as they are, or a
//! mixed group double-stores and misses files.

pub mod group;
pub mod round;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{SchedulerSettings, Settings};
use crate::db::files::Source;
use crate::db::pins::LaneUsage;
use crate::db::state::GroupInfo;
use crate::db::{File, Lane};

pub use group::{cid_group_hex, cid_mod, probability_accepts, probability_draw};

/// Crust block time, used to turn block numbers into remaining lifetime.
pub const BLOCK_SECS: i64 = 6;
/// How long a scanned file without replicas waits before it is looked at again (the TypeScript manager's 30 min).
pub const PENDING_REPLICA_RECHECK_SECS: i64 = 30 * 60;
const MB: i64 = 1024 * 1024;

/// The sWorker's space as the gates see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Capacity {
    /// Bytes the sWorker can still seal into.
    pub free_bytes: u64,
    /// Bytes free on the system disk.
    pub sys_free_bytes: u64,
    /// Percent of the sWorker's space that is SRD.
    pub srd_ratio: u32,
}

/// Everything the rules look at besides the file itself; gathered once per round.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The operator paused picking.
    pub paused: bool,
    /// Our group, when the indexer has read it.
    pub group: Option<GroupInfo>,
    /// Live nodes on the network (work reports in the last half slot), when known.
    pub node_count: Option<u64>,
    /// The last finalized block indexed.
    pub head_number: Option<i64>,
    /// The sWorker's space; `None` when it could not be asked.
    pub capacity: Option<Capacity>,
    /// Pins in flight per lane and the bytes they reserve.
    pub usage: LaneUsage,
    /// The time the rules use for ages.
    pub now: DateTime<Utc>,
}

/// How one rule came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The rule lets the file through.
    Pass,
    /// The rule stops the file (or the round).
    Fail,
    /// The rule does not apply to this file (for example a scanned-file rule on a new order).
    NotApplicable,
    /// An input the rule needs is unavailable; it does not decide.
    Unknown,
}

/// One rule's outcome with the numbers behind it, for `explain`, `plan` and the status page.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Stable rule name (`group_slot`, `probability`, `size`, …).
    pub rule: &'static str,
    /// Its outcome.
    pub outcome: Outcome,
    /// The numbers, in words.
    pub detail: String,
}

impl Check {
    fn new(rule: &'static str, outcome: Outcome, detail: impl Into<String>) -> Self {
        Check {
            rule,
            outcome,
            detail: detail.into(),
        }
    }
}

/// The judgement on one candidate.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Pull it, in this lane.
    Pick {
        /// The lane it is pulled in.
        lane: Lane,
    },
    /// Not for this node (recorded as `skipped` with the reason).
    Skip {
        /// Why, in words.
        reason: String,
    },
    /// Cannot be stored at all (recorded as `invalid`).
    Invalid {
        /// Why, in words.
        reason: String,
    },
    /// No replica on chain yet: looked at again later.
    PendingReplica,
    /// Not enough space in the sWorker right now (recorded as `insufficient_space`).
    NoSpace {
        /// The numbers, in words.
        reason: String,
    },
    /// Its lane is full: it stays `new` for a later round.
    LaneFull,
}

/// A verdict with every rule's outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// What the Picker does with the file.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// Every rule, in evaluation order.
    pub checks: Vec<Check>,
}

/// Lane slots: `maxPendingTasks` split by `largeLanePercent` (40 % for files ≥ 5 GiB by default, at least one
/// slot each as in TypeScript); `largeLanePercent = 0` closes the large lane.
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
    if size >= large_threshold(s) {
        Lane::Large
    } else {
        Lane::Small
    }
}

/// The size in bytes from which a file uses the large lane.
pub fn large_threshold(s: &SchedulerSettings) -> i64 {
    (s.large_file_size_mb as i64).saturating_mul(MB)
}

/// Whether `lane` has a free slot under `usage`.
pub fn lane_has_room(s: &SchedulerSettings, usage: &LaneUsage, lane: Lane) -> bool {
    let (small, large) = lane_caps(s);
    match lane {
        Lane::Small => usage.small < small,
        Lane::Large => usage.large < large,
    }
}

/// The gates that stop a whole round, in order; a round runs only when none fails.
pub fn readiness(settings: &Settings, snap: &Snapshot) -> Vec<Check> {
    let s = &settings.scheduler;
    let mut checks = Vec::new();
    checks.push(if snap.paused {
        Check::new("paused", Outcome::Fail, "picking is paused")
    } else {
        Check::new("paused", Outcome::Pass, "picking is not paused")
    });
    let account = settings.chain.account.as_str();
    checks.push(match &snap.group {
        None => Check::new("group", Outcome::Fail, "group membership not known yet"),
        Some(g) if g.owner.as_deref() == Some(account) => {
            Check::new("group", Outcome::Fail, "chain.account is a group owner")
        }
        Some(g) => match (&g.owner, g.node_index) {
            (Some(owner), Some(i)) => Check::new(
                "group",
                Outcome::Pass,
                format!("member {i} of {} in the group of {owner}", g.members.len()),
            ),
            _ => Check::new("group", Outcome::Fail, "this node is not in a group"),
        },
    });
    match &snap.capacity {
        None => {
            checks.push(Check::new("srd_ratio", Outcome::Fail, "sWorker workload unavailable"));
        }
        Some(c) => {
            let ok = c.srd_ratio >= s.min_srd_ratio;
            checks.push(Check::new(
                "srd_ratio",
                if ok { Outcome::Pass } else { Outcome::Fail },
                format!("SRD ratio {}% (minSrdRatio {}%)", c.srd_ratio, s.min_srd_ratio),
            ));
            let min = s.min_sys_free_gib.saturating_mul(1 << 30);
            checks.push(Check::new(
                "system_disk",
                if c.sys_free_bytes >= min {
                    Outcome::Pass
                } else {
                    Outcome::Fail
                },
                format!(
                    "system disk {} free (minSysFreeGib {} GiB)",
                    human_bytes(c.sys_free_bytes),
                    s.min_sys_free_gib
                ),
            ));
        }
    }
    checks
}

/// The first failing gate, in words, or `None` when a round may run.
pub fn not_ready(checks: &[Check]) -> Option<String> {
    checks
        .iter()
        .find(|c| c.outcome == Outcome::Fail)
        .map(|c| c.detail.clone())
}

/// Judges one candidate: every rule in order, the first that does not pass decides. Pure, so every rule is
/// unit-tested at its boundaries.
pub fn decide(settings: &Settings, source: Source, file: &File, snap: &Snapshot) -> Decision {
    let s = &settings.scheduler;
    let mut checks = Vec::new();
    let mut verdict: Option<Verdict> = None;
    let settle = |v: Verdict, verdict: &mut Option<Verdict>| {
        if verdict.is_none() {
            *verdict = Some(v);
        }
    };
    let scanned = source == Source::Scan;

    // A CID TypeScript's parser rejects cannot be pulled by anyone.
    let valid_cid = cid::Cid::try_from(file.cid.as_str()).is_ok();
    if valid_cid {
        checks.push(Check::new("cid", Outcome::Pass, "a valid CID"));
    } else {
        checks.push(Check::new("cid", Outcome::Fail, "not a valid CID"));
        settle(
            Verdict::Invalid {
                reason: "not a valid CID".into(),
            },
            &mut verdict,
        );
    }

    // Group slot: members split the CIDs between them, exactly as TypeScript members do.
    let members = snap.group.as_ref().map_or(0, |g| g.members.len() as u64);
    match (
        snap.group.as_ref().and_then(|g| g.node_index),
        cid_mod(&file.cid, members),
    ) {
        _ if members == 0 => checks.push(Check::new("group_slot", Outcome::Pass, "no group: every slot is ours")),
        (None, _) => {
            checks.push(Check::new("group_slot", Outcome::Fail, "not a member of the group"));
            settle(
                Verdict::Skip {
                    reason: "not a member of the group".into(),
                },
                &mut verdict,
            );
        }
        (Some(_), None) => checks.push(Check::new("group_slot", Outcome::Unknown, "no slot for an invalid CID")),
        (Some(index), Some(slot)) => {
            let detail = format!("slot {slot} of {members} members; ours is {index}");
            if slot == u64::from(index) {
                checks.push(Check::new("group_slot", Outcome::Pass, detail));
            } else {
                checks.push(Check::new("group_slot", Outcome::Fail, detail));
                settle(
                    Verdict::Skip {
                        reason: format!("group slot {slot} belongs to another member"),
                    },
                    &mut verdict,
                );
            }
        }
    }

    // Probability: with `nodes` live nodes a group takes a file with probability base × members / nodes, the base
    // being TypeScript's 300 for new orders and 160 for scanned files. The draw is seeded by the group (or, alone,
    // by this account), so one group answers the same every time and different groups take different files. An
    // unknown or zero node count does not filter (TypeScript then refuses every file).
    let base = if scanned {
        s.scan_target_replicas
    } else {
        s.target_replicas
    };
    match snap.node_count {
        _ if base == 0 => checks.push(Check::new("probability", Outcome::NotApplicable, "filter turned off")),
        None | Some(0) => checks.push(Check::new(
            "probability",
            Outcome::Unknown,
            "live node count unknown: not filtered",
        )),
        Some(nodes) => {
            let share = (f64::from(base) * members.max(1) as f64 / nodes as f64).min(1.0);
            let seed = snap
                .group
                .as_ref()
                .and_then(|g| g.owner.as_deref())
                .unwrap_or(settings.chain.account.as_str());
            let draw = probability_draw(seed, &file.cid);
            let detail = format!(
                "share {:.1}% = {base} × {} members / {nodes} live nodes; draw {:.1}%",
                share * 100.0,
                members.max(1),
                draw * 100.0
            );
            if share >= 1.0 || draw < share {
                checks.push(Check::new("probability", Outcome::Pass, detail));
            } else {
                checks.push(Check::new("probability", Outcome::Fail, detail));
                settle(
                    Verdict::Skip {
                        reason: format!(
                            "probability filter: {:.1}% of {} for {nodes} live nodes",
                            share * 100.0,
                            if scanned { "scanned files" } else { "new orders" }
                        ),
                    },
                    &mut verdict,
                );
            }
        }
    }

    // Size bounds.
    let size_detail = format!(
        "{} (minFileSize {} MB, maxFileSize {} MB)",
        human_bytes(file.size_bytes.max(0) as u64),
        s.min_file_size,
        s.max_file_size
    );
    if s.min_file_size > 0 && file.size_bytes < (s.min_file_size as i64).saturating_mul(MB) {
        checks.push(Check::new("size", Outcome::Fail, size_detail));
        settle(
            Verdict::Skip {
                reason: format!("smaller than minFileSize {} MB", s.min_file_size),
            },
            &mut verdict,
        );
    } else if s.max_file_size > 0 && file.size_bytes > (s.max_file_size as i64).saturating_mul(MB) {
        checks.push(Check::new("size", Outcome::Fail, size_detail));
        settle(
            Verdict::Skip {
                reason: format!("larger than maxFileSize {} MB", s.max_file_size),
            },
            &mut verdict,
        );
    } else {
        checks.push(Check::new("size", Outcome::Pass, size_detail));
    }

    // Replica and lifetime rules read the scanner's FilesV2 values, so they judge scanned files only: a new order's
    // row may carry stale values from an earlier scan (TypeScript's event rows carry none).
    if !scanned {
        checks.push(Check::new(
            "replicas",
            Outcome::NotApplicable,
            "a new order: replica bounds apply to scanned files",
        ));
        checks.push(Check::new(
            "lifetime",
            Outcome::NotApplicable,
            "a new order: lifetime applies to scanned files",
        ));
    } else {
        let detail = format!(
            "{} replicas (minReplicas {}, maxReplicas {})",
            file.replicas, s.min_replicas, s.max_replicas
        );
        if s.min_replicas > 0 && file.replicas < s.min_replicas as i32 && file.expired_at > 0 {
            checks.push(Check::new("replicas", Outcome::Fail, detail));
            settle(
                Verdict::Skip {
                    reason: format!("{} replicas < minReplicas {}", file.replicas, s.min_replicas),
                },
                &mut verdict,
            );
        } else if s.max_replicas > 0 && file.replicas >= s.max_replicas as i32 {
            checks.push(Check::new("replicas", Outcome::Fail, detail));
            settle(
                Verdict::Skip {
                    reason: format!("{} replicas ≥ maxReplicas {}", file.replicas, s.max_replicas),
                },
                &mut verdict,
            );
        } else {
            checks.push(Check::new("replicas", Outcome::Pass, detail));
        }
        if file.expired_at == 0 {
            // A scanned file nobody replicated yet: wait a while, then call it invalid.
            let age = snap.now - file.pursued_since;
            let limit = chrono::Duration::days(i64::from(s.no_replica_days));
            let detail = format!(
                "no replica yet, pursued for {} h (noReplicaDays {})",
                age.num_hours(),
                s.no_replica_days
            );
            checks.push(Check::new("lifetime", Outcome::Fail, detail));
            if age > limit {
                settle(
                    Verdict::Invalid {
                        reason: format!("no replica after {} days", s.no_replica_days),
                    },
                    &mut verdict,
                );
            } else {
                settle(Verdict::PendingReplica, &mut verdict);
            }
        } else if let Some(head) = snap.head_number {
            let remaining_secs = (file.expired_at - head).saturating_mul(BLOCK_SECS);
            let detail = format!(
                "expires at block {} ({} days from block {head}; minLifetimeDays {})",
                file.expired_at,
                remaining_secs.max(0) / 86_400,
                s.min_lifetime_days
            );
            if remaining_secs < i64::from(s.min_lifetime_days) * 86_400 {
                checks.push(Check::new("lifetime", Outcome::Fail, detail));
                settle(
                    Verdict::Skip {
                        reason: format!(
                            "expires in {} days (< minLifetimeDays {})",
                            remaining_secs.max(0) / 86_400,
                            s.min_lifetime_days
                        ),
                    },
                    &mut verdict,
                );
            } else {
                checks.push(Check::new("lifetime", Outcome::Pass, detail));
            }
        } else {
            checks.push(Check::new("lifetime", Outcome::Unknown, "chain head unknown"));
        }
    }

    // Lane: large files first (as TypeScript); a closed large lane skips large files instead of parking them.
    let lane = lane_of(s, file.size_bytes);
    let (small_cap, large_cap) = lane_caps(s);
    let (used, cap) = match lane {
        Lane::Small => (snap.usage.small, small_cap),
        Lane::Large => (snap.usage.large, large_cap),
    };
    let lane_detail = format!("{} lane: {used} of {cap} slots in use", lane.as_str());
    if lane == Lane::Large && cap == 0 {
        checks.push(Check::new("lane", Outcome::Fail, lane_detail));
        settle(
            Verdict::Skip {
                reason: "large files are not stored here (largeLanePercent 0)".into(),
            },
            &mut verdict,
        );
    } else if used >= cap {
        checks.push(Check::new("lane", Outcome::Fail, lane_detail));
        settle(Verdict::LaneFull, &mut verdict);
    } else {
        checks.push(Check::new("lane", Outcome::Pass, lane_detail));
    }

    // Space: the sWorker must hold spaceFactor × (this file + everything in flight), as TypeScript's 2.2.
    let reserved = u64::try_from(snap.usage.reserved_bytes).unwrap_or(0);
    let need = (file.size_bytes.max(0) as u64).saturating_add(reserved) as f64 * s.space_factor;
    match &snap.capacity {
        None => checks.push(Check::new("space", Outcome::Unknown, "sWorker free space unavailable")),
        Some(c) => {
            let detail = format!(
                "needs {} = {:.1} × ({} + {} in flight); sWorker has {} free",
                human_bytes(need as u64),
                s.space_factor,
                human_bytes(file.size_bytes.max(0) as u64),
                human_bytes(reserved),
                human_bytes(c.free_bytes)
            );
            if need > c.free_bytes as f64 {
                checks.push(Check::new("space", Outcome::Fail, detail.clone()));
                settle(Verdict::NoSpace { reason: detail }, &mut verdict);
            } else {
                checks.push(Check::new("space", Outcome::Pass, detail));
            }
        }
    }

    Decision {
        verdict: verdict.unwrap_or(Verdict::Pick { lane }),
        checks,
    }
}

/// Bytes for people: `1.5 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests;
