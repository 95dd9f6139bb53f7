//! Crash safety: `smanager run` is killed with SIGKILL at random moments 20 times during a devnet run and restarted.
//! Afterwards every order is in a final or in-progress state, no CID was pinned twice at the same time, and no
//! pending seal is orphaned.

mod common;

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use rand::{Rng, SeedableRng};

use common::TestDb;
use smanager::db::schema::{files, pins};
use smanager::db::{FileStatus, PinStatus};
use smanager::devnet::chain::{account, ChainConfig, DevChain, ScenarioConfig};
use smanager::devnet::content::ContentStore;
use smanager::devnet::ipfs::{IpfsConfig, IpfsSim};
use smanager::devnet::sworker::{SworkerConfig, SworkerSim};

fn any() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 0))
}

#[actix_rt::test]
async fn twenty_sigkills_lose_and_duplicate_nothing() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = DevChain::start(
        ChainConfig {
            scenario: ScenarioConfig {
                seed: 99,
                order_rate: 2.0,
                close_share: 0.2,
                close_after_blocks: 10,
                unavailable_share: 0.05,
                max_size: 600_000,
            },
            ..ChainConfig::quiet(300, vec![me])
        },
        Arc::new(content.clone()),
    )
    .await
    .expect("chain");
    let sworker = SworkerSim::start(any(), SworkerConfig::default()).expect("sworker");
    let ipfs = IpfsSim::start(
        any(),
        IpfsConfig {
            transfer_rate: 4 * 1024 * 1024,
        },
        content.clone(),
        &sworker.url(),
    )
    .expect("ipfs");
    sworker.set_ipfs_url(&ipfs.url());
    let t = TestDb::migrated();
    let start = || -> Child {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smanager"));
        for (k, _) in std::env::vars() {
            if k.starts_with("SMANAGER") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("run")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("SMANAGER__CHAIN__ACCOUNT", smanager::chain::ss58::encode(66, &me))
            .env("SMANAGER__CHAIN__END_POINT", chain.ws_url())
            .env("SMANAGER__CHAIN__POLL_INTERVAL_MS", "100")
            .env("SMANAGER__CHAIN__GROUP_REFRESH_SECS", "1")
            .env("SMANAGER__SWORKER__END_POINT", sworker.url())
            .env("SMANAGER__IPFS__END_POINT", ipfs.url())
            .env("SMANAGER__DATABASE__URL", &t.url)
            .env("SMANAGER__ADMIN__BIND", "127.0.0.1:0")
            .env("SMANAGER__SCHEDULER__TICK_SECS", "1")
            .env("SMANAGER__PULLER__LEASE_SECS", "3")
            .env("SMANAGER__PULLER__BASE_TIMEOUT_SECS", "8")
            .env("SMANAGER__PULLER__STALL_TIMEOUT_SECS", "3")
            .env("SMANAGER__SEALER__CHECK_INTERVAL_SECS", "1")
            .env("SMANAGER__SEALER__ORPHAN_GRACE_SECS", "4")
            .env("SMANAGER__CLEANUP__INTERVAL_SECS", "1")
            .env("SMANAGER__RETRY__BASE_DELAY_SECS", "1")
            .env("SMANAGER__RETRY__MAX_DELAY_SECS", "4")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start smanager")
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(20);
    for _ in 0..20 {
        let mut child = start();
        actix_rt::time::sleep(Duration::from_millis(rng.gen_range(300..2500))).await;
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }
    // A last, undisturbed run settles everything the chain asked for.
    chain.pause();
    let mut child = common::KillOnDrop(start());
    let truth = chain.ground_truth();
    let available: HashSet<String> = truth
        .orders
        .iter()
        .filter(|o| o.available)
        .map(|o| o.cid.clone())
        .collect();
    let closed: HashSet<String> = truth.closes.iter().map(|c| c.cid.clone()).collect();
    // Settled: nothing queued or pinning, every closed file cleaned, no pending seal left in the sWorker.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let rows: Vec<(String, FileStatus)> = files::table
            .select((files::cid, files::status))
            .load(&mut t.conn())
            .expect("files");
        let busy: Vec<&(String, FileStatus)> = rows
            .iter()
            .filter(|(_, s)| matches!(s, FileStatus::New | FileStatus::Queued | FileStatus::Pinning))
            .collect();
        let unclean: Vec<&String> = closed
            .iter()
            .filter(|c| !rows.iter().any(|(cid, s)| cid == *c && *s == FileStatus::Cleaned))
            .collect();
        if busy.is_empty() && unclean.is_empty() && sworker.pending_cids().is_empty() {
            break;
        }
        if Instant::now() > deadline {
            panic!("the pipeline did not settle after the kills: busy {busy:?}, not cleaned {unclean:?}");
        }
        actix_rt::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = Command::new("kill").arg("-TERM").arg(child.0.id().to_string()).status();
    let _ = child.0.wait();

    // Every order has a row in a final or in-progress state.
    let rows: Vec<(String, FileStatus)> = files::table
        .select((files::cid, files::status))
        .load(&mut t.conn())
        .expect("files");
    for o in &truth.orders {
        let s = rows.iter().find(|(c, _)| *c == o.cid).map(|(_, s)| *s);
        let Some(s) = s else { panic!("order {} was lost", o.cid) };
        // Final: sealed, cleaned, closed, skipped, invalid, failed; in progress: waiting for a replica, space or a retry.
        assert!(
            !matches!(s, FileStatus::New | FileStatus::Queued | FileStatus::Pinning),
            "{} still {s}",
            o.cid
        );
        if o.available && s == FileStatus::Failed {
            panic!("{} failed although its content exists", o.cid);
        }
    }
    let sealed = rows.iter().filter(|(_, s)| *s == FileStatus::Sealed).count();
    assert!(
        sealed >= available.len() / 3,
        "{sealed} sealed of {} available orders",
        available.len()
    );
    // No CID pinned twice at the same time, by IPFS's own count and by the pin table.
    assert_eq!(ipfs.stats().max_concurrent_same_cid, 1, "{:?}", ipfs.stats());
    let live: Vec<String> = pins::table
        .filter(pins::status.eq_any(PinStatus::LIVE.to_vec()))
        .select(pins::cid)
        .load(&mut t.conn())
        .expect("pins");
    let unique: HashSet<&String> = live.iter().collect();
    assert_eq!(unique.len(), live.len());
    // No orphaned pending seal.
    let pending = sworker.pending_cids();
    assert!(
        pending.iter().all(|c| unique.contains(c)),
        "orphan pending seals: {pending:?}"
    );
    ipfs.stop().await;
    sworker.stop().await;
    chain.stop().await;
}
