//! The pipeline end to end over real sockets and a real PostgreSQL: orders → pinned (sealed by the Crust IPFS
//! simulator into the sWorker simulator) → closed → deleted; a CID nobody has stalls and is retried with backoff.

mod common;
#[path = "common/scripted.rs"]
mod scripted;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use diesel::prelude::*;

use common::{eventually, TestDb};
use scripted::GrowingChain;
use smanager::actors::{self, Deps};
use smanager::chain::{ChainEvent, CloseReason, FileOrder};
use smanager::db::schema::files;
use smanager::db::state::{self, GroupInfo};
use smanager::db::FileStatus;
use smanager::devnet::content::ContentStore;
use smanager::devnet::ipfs::{IpfsConfig, IpfsSim};
use smanager::devnet::sworker::{SworkerConfig, SworkerSim};
use smanager::ipfs::KuboClient;
use smanager::sworker::SworkerClient;

const ME: &str = "cTM8suyN19VZb7JEPRNvtezyfpEAJyYxHkk1n5J4XEr6XroRa";

fn any() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn status_of(t: &TestDb, cid: &str) -> Option<FileStatus> {
    let mut c = t.conn();
    files::table.find(cid).select(files::status).first(&mut c).ok()
}

#[actix_rt::test]
async fn orders_are_pinned_sealed_closed_and_deleted() {
    let t = TestDb::migrated();
    let content = ContentStore::new();
    let sworker = SworkerSim::start(any(), SworkerConfig::default()).expect("sworker");
    let ipfs = IpfsSim::start(any(), IpfsConfig::default(), content.clone(), &sworker.url()).expect("ipfs");
    sworker.set_ipfs_url(&ipfs.url());

    let good: Vec<String> = (0..5u64)
        .map(|i| content.build(100 + i, 100_000 + i * 300_000, i % 2 == 1, true).cid)
        .collect();
    let missing = content.build(999, 50_000, false, false).cid;

    {
        let mut c = t.conn();
        let g = GroupInfo {
            owner: Some("cTGLdr4shCimXefxtJtGUhde5tVxn3q7LJbamicTntUogmWBp".into()),
            members: vec![ME.into()],
            node_index: Some(0),
            refreshed_at: None,
        };
        state::kv_set(&mut c, state::KV_GROUP, &g).expect("group");
    }
    let chain = Rc::new(GrowingChain::default());
    let order = |cid: &str, size: u64| {
        ChainEvent::Ordered(FileOrder {
            cid: cid.into(),
            size,
            tips: 10,
            owner: "cTGLdr4shCimXefxtJtGUhde5tVxn3q7LJbamicTntUogmWBp".into(),
        })
    };
    let mut events: Vec<ChainEvent> = good
        .iter()
        .map(|c| order(c, content.get(c).map_or(0, |f| f.size)))
        .collect();
    events.push(order(&missing, 50_000));
    chain.push(events);

    let mut settings = t.app_settings();
    settings.puller.base_timeout_secs = 2;
    let deps = Deps {
        db: t.db(),
        settings: Rc::new(settings),
        chain: chain.clone(),
        ipfs: Rc::new(KuboClient::new(&ipfs.url(), Duration::from_secs(5))),
        sworker: Rc::new(SworkerClient::new(&sworker.url(), Duration::from_secs(5))),
        holder: "test/pipeline".into(),
    };
    let peers = actors::start(deps);

    eventually(90, "every available order sealed", || {
        let ok = good.iter().all(|c| status_of(&t, c) == Some(FileStatus::Sealed));
        async move { ok.then_some(()) }
    })
    .await;
    let valid = sworker.valid_cids();
    for c in &good {
        assert!(valid.contains(c), "sWorker holds {c} as valid");
        assert!(ipfs.pinned().contains(c));
    }
    // The missing CID times out in pin/add and waits for its retry, with the error recorded.
    eventually(60, "the stalled CID failed an attempt", || {
        let mut c = t.conn();
        let row: Option<(FileStatus, i32, Option<String>)> = files::table
            .find(&missing)
            .select((files::status, files::attempts, files::last_error))
            .first(&mut c)
            .ok();
        async move {
            row.filter(|(_, attempts, err)| *attempts >= 1 && err.is_some())
                .map(|_| ())
        }
    })
    .await;
    assert!(
        !sworker.pending_cids().contains(&missing),
        "a cancelled pin leaves no pending seal"
    );

    // Close two orders: cleanup deletes them from the sWorker, which unpins them in IPFS.
    chain.push(vec![
        ChainEvent::Closed {
            cid: good[0].clone(),
            reason: CloseReason::Closed,
        },
        ChainEvent::Closed {
            cid: good[1].clone(),
            reason: CloseReason::Illegal,
        },
    ]);
    eventually(60, "closed files cleaned", || {
        let ok = status_of(&t, &good[0]) == Some(FileStatus::Cleaned)
            && status_of(&t, &good[1]) == Some(FileStatus::Cleaned);
        async move { ok.then_some(()) }
    })
    .await;
    let valid = sworker.valid_cids();
    assert!(!valid.contains(&good[0]) && !valid.contains(&good[1]));
    assert!(valid.contains(&good[2]));
    eventually(30, "IPFS unpinned the deleted files", || {
        let p = ipfs.pinned();
        let ok = !p.contains(&good[0]) && !p.contains(&good[1]);
        async move { ok.then_some(()) }
    })
    .await;
    assert_eq!(ipfs.stats().max_concurrent_same_cid, 1, "no CID pinned twice at once");
    smanager::app::shutdown(&peers).await;
}
