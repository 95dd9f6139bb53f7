//! Each rule at its boundaries, and the round's draw order.

use bigdecimal::BigDecimal;
use chrono::Utc;

use super::round::{dry_run, Candidates, Round};
use super::*;
use crate::config::{Strategy, StrategyPreset, StrategyWeights};
use crate::db::FileStatus;

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
        space_waits: 0,
    }
}

/// A scanned file that passes every scanned-file rule under the defaults.
fn scanned(cid: &str, size: i64) -> File {
    let mut f = file(cid, size);
    f.seen_by_event = false;
    f.seen_by_scan = true;
    f.replicas = 50;
    f.expired_at = 1000 + 200 * 14_400; // 200 days after the head
    f
}

fn snap(members: usize, index: u32) -> Snapshot {
    Snapshot {
        paused: false,
        group: Some(GroupInfo {
            owner: Some("owner".into()),
            members: (0..members).map(|i| format!("m{i}")).collect(),
            node_index: Some(index),
            refreshed_at: None,
        }),
        node_count: None,
        head_number: Some(1000),
        capacity: Some(Capacity {
            free_bytes: 1 << 40,
            sys_free_bytes: 1 << 40,
            srd_ratio: 100,
        }),
        usage: LaneUsage::default(),
        now: Utc::now(),
    }
}

fn verdict(s: &Settings, source: Source, f: &File, c: &Snapshot) -> Verdict {
    decide(s, source, f, c).verdict
}

fn is_skip(v: &Verdict, needle: &str) -> bool {
    matches!(v, Verdict::Skip { reason } if reason.contains(needle))
}

const CID: &str = "QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn";

fn cids(n: u64) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mh = cid::multihash::Multihash::<64>::wrap(0x12, &sp_crypto_hashing::sha2_256(&i.to_le_bytes()))
                .expect("multihash");
            cid::Cid::new_v0(mh).expect("v0").to_string()
        })
        .collect()
}

#[test]
fn exactly_one_member_owns_each_cid() {
    let s = Settings::default();
    for cid in [CID, "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"] {
        for members in [3usize, 7] {
            let owners: Vec<u32> = (0..members as u32)
                .filter(|i| {
                    matches!(
                        verdict(&s, Source::Events, &file(cid, 10), &snap(members, *i)),
                        Verdict::Pick { .. }
                    )
                })
                .collect();
            assert_eq!(owners.len(), 1, "{cid}: {owners:?}");
            assert_eq!(Some(u64::from(owners[0])), cid_mod(cid, members as u64));
        }
    }
}

#[test]
fn every_rule_reports_in_order() {
    let d = decide(&Settings::default(), Source::Events, &file(CID, 10), &snap(1, 0));
    let rules: Vec<&str> = d.checks.iter().map(|c| c.rule).collect();
    assert_eq!(
        rules,
        [
            "cid",
            "group_slot",
            "probability",
            "size",
            "replicas",
            "lifetime",
            "lane",
            "space"
        ]
    );
    assert_eq!(d.verdict, Verdict::Pick { lane: Lane::Small });
    // The first failing rule decides, the later ones still report their numbers.
    let mut c = snap(3, 0);
    c.capacity = Some(Capacity {
        free_bytes: 1,
        sys_free_bytes: 1 << 40,
        srd_ratio: 100,
    });
    let other = (0..100)
        .map(|i| cids(100)[i].clone())
        .find(|cid| cid_mod(cid, 3) != Some(0))
        .expect("a cid of another slot");
    let d = decide(&Settings::default(), Source::Events, &file(&other, 10), &c);
    assert!(is_skip(&d.verdict, "group slot"), "{:?}", d.verdict);
    let space = d.checks.iter().find(|c| c.rule == "space").expect("space");
    assert_eq!(space.outcome, Outcome::Fail);
}

#[test]
fn size_bounds_are_inclusive() {
    let mut s = Settings::default();
    s.scheduler.min_file_size = 1;
    s.scheduler.max_file_size = 2;
    let c = snap(1, 0);
    const M: i64 = 1024 * 1024;
    assert!(is_skip(
        &verdict(&s, Source::Events, &file(CID, M - 1), &c),
        "minFileSize"
    ));
    assert!(matches!(
        verdict(&s, Source::Events, &file(CID, M), &c),
        Verdict::Pick { .. }
    ));
    assert!(matches!(
        verdict(&s, Source::Events, &file(CID, 2 * M), &c),
        Verdict::Pick { .. }
    ));
    assert!(is_skip(
        &verdict(&s, Source::Events, &file(CID, 2 * M + 1), &c),
        "maxFileSize"
    ));
    assert!(matches!(
        verdict(&s, Source::Events, &file("not-a-cid", 1), &c),
        Verdict::Invalid { .. }
    ));
}

#[test]
fn replica_bounds_apply_to_scanned_files_under_every_strategy() {
    let c = snap(1, 0);
    for strategy in [
        Strategy::Preset(StrategyPreset::Default),
        Strategy::Preset(StrategyPreset::SrdFirst),
        Strategy::Preset(StrategyPreset::NewFileFirst),
    ] {
        let mut s = Settings::default();
        s.scheduler.strategy = strategy;
        let mut f = scanned(CID, 10);
        f.replicas = 39;
        assert!(is_skip(&verdict(&s, Source::Scan, &f, &c), "minReplicas 40"));
        f.replicas = 40;
        assert!(matches!(verdict(&s, Source::Scan, &f, &c), Verdict::Pick { .. }));
        f.replicas = 99;
        assert!(matches!(verdict(&s, Source::Scan, &f, &c), Verdict::Pick { .. }));
        f.replicas = 100;
        assert!(is_skip(&verdict(&s, Source::Scan, &f, &c), "maxReplicas 100"));
    }
}

#[test]
fn lifetime_boundary_and_pending_replica() {
    let s = Settings::default();
    let c = snap(1, 0);
    let mut f = scanned(CID, 10);
    f.expired_at = 1000 + 120 * 14_400; // exactly minLifetimeDays
    assert!(matches!(verdict(&s, Source::Scan, &f, &c), Verdict::Pick { .. }));
    f.expired_at -= 1;
    assert!(is_skip(&verdict(&s, Source::Scan, &f, &c), "minLifetimeDays"));
    // No expiry yet: waits for a replica, then after noReplicaDays it is invalid.
    let mut f = scanned(CID, 10);
    f.expired_at = 0;
    f.replicas = 0;
    assert_eq!(verdict(&s, Source::Scan, &f, &c), Verdict::PendingReplica);
    f.pursued_since = Utc::now() - chrono::Duration::days(11);
    assert!(matches!(verdict(&s, Source::Scan, &f, &c), Verdict::Invalid { reason } if reason.contains("no replica")));
}

/// A renewed file re-ordered with 60 days left in an old scan: the order rules judge it, not the stale scan values.
#[test]
fn a_new_order_is_not_judged_by_stale_scan_values() {
    let s = Settings::default();
    let c = snap(1, 0);
    let mut f = file(CID, 10);
    f.seen_by_scan = true;
    f.expired_at = 1000 + 60 * 14_400;
    f.replicas = 150;
    let d = decide(&s, Source::Events, &f, &c);
    assert!(matches!(d.verdict, Verdict::Pick { .. }), "{:?}", d.verdict);
    for rule in ["replicas", "lifetime"] {
        let check = d.checks.iter().find(|c| c.rule == rule).expect("rule");
        assert_eq!(check.outcome, Outcome::NotApplicable);
    }
}

#[test]
fn probability_bases_are_typescripts_and_the_draw_is_per_group() {
    let s = Settings::default();
    let mut c = snap(1, 0);
    c.node_count = Some(3000); // new orders: 300/3000 = 10 %; scanned: 160/3000 ≈ 5.3 %
    let cids = cids(4000);
    let picked = |c: &Snapshot, source: Source| -> Vec<usize> {
        (0..cids.len())
            .filter(|&i| {
                let f = if source == Source::Scan {
                    scanned(&cids[i], 10)
                } else {
                    file(&cids[i], 10)
                };
                matches!(verdict(&s, source, &f, c), Verdict::Pick { .. })
            })
            .collect()
    };
    let new = picked(&c, Source::Events);
    assert!((300..=500).contains(&new.len()), "{} of 4000 at 10 %", new.len());
    assert_eq!(new, picked(&c, Source::Events), "same group, same answers");
    let scan = picked(&c, Source::Scan);
    assert!((140..=290).contains(&scan.len()), "{} of 4000 at 5.3 %", scan.len());
    // Another group draws its own 10 %: the overlap is about 10 % of it, not all of it.
    let mut other = c.clone();
    if let Some(g) = other.group.as_mut() {
        g.owner = Some("another-owner".into());
    }
    let theirs = picked(&other, Source::Events);
    let overlap = new.iter().filter(|i| theirs.contains(i)).count();
    assert!(
        overlap < new.len() / 2,
        "{overlap} of {} shared between groups",
        new.len()
    );
    // Few nodes: every file is taken; a base of 0 turns the filter off; an unknown count does not filter.
    c.node_count = Some(50);
    assert_eq!(picked(&c, Source::Events).len(), cids.len());
    let mut off = s.clone();
    off.scheduler.target_replicas = 0;
    c.node_count = Some(1_000_000);
    assert!(matches!(
        verdict(&off, Source::Events, &file(&cids[0], 10), &c),
        Verdict::Pick { .. }
    ));
    c.node_count = None;
    assert!(matches!(
        verdict(&s, Source::Events, &file(&cids[0], 10), &c),
        Verdict::Pick { .. }
    ));
}

#[test]
fn capacity_and_lanes() {
    let s = Settings::default();
    let mut c = snap(1, 0);
    c.capacity = Some(Capacity {
        free_bytes: 100,
        sys_free_bytes: 1 << 40,
        srd_ratio: 100,
    });
    // 2.2 × 45 = 99 fits in 100; 2.2 × 46 does not.
    assert!(matches!(
        verdict(&s, Source::Events, &file(CID, 45), &c),
        Verdict::Pick { .. }
    ));
    assert!(matches!(
        verdict(&s, Source::Events, &file(CID, 46), &c),
        Verdict::NoSpace { .. }
    ));
    c = snap(1, 0);
    let (small, large) = lane_caps(&s.scheduler);
    assert_eq!((small, large), (20, 12));
    c.usage.small = small;
    assert_eq!(verdict(&s, Source::Events, &file(CID, 1), &c), Verdict::LaneFull);
    assert_eq!(
        verdict(&s, Source::Events, &file(CID, 5 << 30), &c),
        Verdict::Pick { lane: Lane::Large }
    );
    assert_eq!(
        verdict(&s, Source::Events, &file(CID, (5 << 30) - 1), &c),
        Verdict::LaneFull
    );
    let mut closed = s.clone();
    closed.scheduler.large_lane_percent = 0;
    assert!(is_skip(
        &verdict(&closed, Source::Events, &file(CID, 6 << 30), &snap(1, 0)),
        "largeLanePercent 0"
    ));
}

#[test]
fn readiness_gates() {
    let s = Settings::default();
    assert_eq!(not_ready(&readiness(&s, &snap(1, 0))), None);
    let mut c = snap(1, 0);
    c.paused = true;
    assert_eq!(not_ready(&readiness(&s, &c)).as_deref(), Some("picking is paused"));
    let mut c = snap(1, 0);
    c.capacity = Some(Capacity {
        free_bytes: 1 << 40,
        sys_free_bytes: 1 << 40,
        srd_ratio: 69,
    });
    assert!(not_ready(&readiness(&s, &c)).is_some_and(|w| w.contains("minSrdRatio 70")));
    let mut c = snap(1, 0);
    c.capacity = Some(Capacity {
        free_bytes: 1 << 40,
        sys_free_bytes: (50 << 30) - 1,
        srd_ratio: 70,
    });
    assert!(not_ready(&readiness(&s, &c)).is_some_and(|w| w.contains("system disk")));
    let mut c = snap(1, 0);
    c.group = None;
    assert!(not_ready(&readiness(&s, &c)).is_some());
    let mut c = snap(1, 0);
    c.capacity = None;
    assert!(not_ready(&readiness(&s, &c)).is_some_and(|w| w.contains("sWorker")));
}

fn candidates_of(n: usize, large: bool, scanned_files: bool) -> Vec<File> {
    cids(n as u64)
        .into_iter()
        .map(|c| {
            let size = if large { 6 << 30 } else { 10 };
            if scanned_files {
                scanned(&c, size)
            } else {
                file(&c, size)
            }
        })
        .collect()
}

/// A full large lane never idles the small lane, and large files go first while the large lane has room.
#[test]
fn lanes_do_not_block_each_other() {
    let s = Settings::default();
    let (small_cap, large_cap) = lane_caps(&s.scheduler);
    let c = Candidates {
        events_small: candidates_of(50, false, false),
        events_large: candidates_of(50, true, false),
        ..Default::default()
    };
    let mut round = Round::new(&s, snap(1, 0), c, 7);
    let taken = dry_run(&mut round, 1000);
    let lanes: Vec<Lane> = taken
        .iter()
        .filter_map(|(_, _, d)| match d.verdict {
            Verdict::Pick { lane } => Some(lane),
            _ => None,
        })
        .collect();
    assert_eq!(lanes.iter().filter(|l| **l == Lane::Large).count() as i64, large_cap);
    assert_eq!(lanes.iter().filter(|l| **l == Lane::Small).count() as i64, small_cap);
    assert!(
        lanes[..large_cap as usize].iter().all(|l| *l == Lane::Large),
        "large first"
    );
    // Large lane already full: the small lane still fills.
    let mut full = snap(1, 0);
    full.usage.large = large_cap;
    let c = Candidates {
        events_small: candidates_of(50, false, false),
        events_large: candidates_of(50, true, false),
        ..Default::default()
    };
    let taken = dry_run(&mut Round::new(&s, full, c, 7), 1000);
    assert_eq!(taken.len() as i64, small_cap);
}

#[test]
fn weights_split_sources_and_zero_sum_falls_back_to_default() {
    let mut s = Settings::default();
    s.scheduler.max_pending_tasks = 10_000;
    let c = || Candidates {
        events_small: candidates_of(1000, false, false),
        scan_small: candidates_of(1000, false, true),
        ..Default::default()
    };
    let new_share = |s: &Settings| {
        let taken = dry_run(&mut Round::new(s, snap(1, 0), c(), 3), 400);
        taken.iter().filter(|(src, _, _)| *src == Source::Events).count()
    };
    s.scheduler.strategy = Strategy::Preset(StrategyPreset::NewFileFirst);
    let n = new_share(&s);
    assert!((280..=360).contains(&n), "newFileFirst 80 %: {n} of 400");
    s.scheduler.strategy = Strategy::Weights(StrategyWeights {
        existed_files_weight: 100,
        db_files_weight: 0,
        new_files_weight: 0,
    });
    let n = new_share(&s);
    assert!((160..=240).contains(&n), "zero sum → default 50 %: {n} of 400");
    s.scheduler.strategy = Strategy::Weights(StrategyWeights::default());
    assert_eq!(new_share(&s), 400, "newFilesWeight defaults to 100, the others to 0");
}

#[test]
fn human_sizes() {
    assert_eq!(human_bytes(0), "0 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(5 << 30), "5.0 GiB");
}
