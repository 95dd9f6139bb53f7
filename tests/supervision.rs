//! Supervision: an injected failure stops the Puller, the supervisor restarts it, and it re-adopts the leased pin it
//! was driving — the same pin row, never a second one. Also across a process-like restart (a new holder after a
//! graceful shutdown). IPFS is a real js-ipfs node; `pin/add` of content nobody has stays in flight.

mod common;
#[path = "common/jsipfs.rs"]
mod jsipfs;

use std::rc::Rc;
use std::time::Duration;

use diesel::prelude::*;
use futures_util::future::LocalBoxFuture;

use common::{eventually, TestDb};
use smanager::actors::puller::{InFlight, Pull};
use smanager::actors::{self, Deps, RestartActor};
use smanager::chain::{ChainError, ChainEvent, ChainSource, FileOrder, IndexedBlock};
use smanager::db::schema::pins;
use smanager::db::{files, Lane, Pin, PinStatus};
use smanager::ipfs::KuboClient;
use smanager::sworker::SworkerClient;

/// A chain that is never ready: this test is about the Puller only.
struct NoChain;
impl ChainSource for NoChain {
    fn finalized_head(&self) -> LocalBoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(async { Err(ChainError::Unavailable("no chain in this test".into())) })
    }
    fn block(&self, n: u64) -> LocalBoxFuture<'_, Result<IndexedBlock, ChainError>> {
        Box::pin(async move { Err(ChainError::NotFinalized(n)) })
    }
}

// A valid CID for content that exists nowhere.
const CID: &str = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

fn deps(t: &TestDb, ipfs_api: &str, holder: &str) -> Deps {
    Deps {
        db: t.db(),
        settings: Rc::new(t.app_settings()),
        chain: Rc::new(NoChain),
        ipfs: Rc::new(KuboClient::new(ipfs_api, Duration::from_secs(5))),
        sworker: Rc::new(SworkerClient::new("http://127.0.0.1:9", Duration::from_secs(1))),
        holder: holder.into(),
    }
}

fn live_pins(t: &TestDb) -> Vec<Pin> {
    let mut c = t.conn();
    pins::table
        .filter(pins::cid.eq(CID))
        .select(Pin::as_select())
        .load(&mut c)
        .expect("pins")
}

#[actix_rt::test]
async fn puller_restart_re_adopts_its_leased_pin_without_duplicating_it() {
    let Some(ipfs) = jsipfs::JsIpfs::start(3) else {
        return;
    };
    let t = TestDb::migrated();
    let pin = {
        let mut c = t.conn();
        files::apply_block(
            &mut c,
            &IndexedBlock {
                number: 1,
                hash: "0x1".into(),
                timestamp_ms: None,
                events: vec![ChainEvent::Ordered(FileOrder {
                    cid: CID.into(),
                    size: 1000,
                    tips: 1,
                    owner: "alice".into(),
                })],
            },
        )
        .expect("order");
        files::queue_pin(&mut c, CID, Lane::Small, 1000)
            .expect("queue")
            .expect("pin row")
    };

    let peers = actors::start(deps(&t, &ipfs.api, "test/holder-1"));
    peers.puller.do_send(Pull { pin_id: pin.id });
    eventually(60, "the pin is in flight under our lease", || {
        let a = peers.puller.clone();
        let t = &t;
        async move {
            let r = a.send(InFlight).await.ok()?;
            let rows = live_pins(t);
            (r.pins == vec![pin.id]
                && rows.len() == 1
                && rows[0].status == PinStatus::Pinning
                && rows[0].lease_holder.as_deref() == Some("test/holder-1"))
            .then_some(())
        }
    })
    .await;

    // Injected failure: the actor's context stops; the supervisor restarts it.
    peers.puller.do_send(RestartActor);
    let report = eventually(60, "the restarted puller re-adopted the pin", || {
        let a = peers.puller.clone();
        async move {
            let r = a.send(InFlight).await.ok()?;
            (r.starts >= 2 && r.pins == vec![pin.id]).then_some(r)
        }
    })
    .await;
    assert_eq!(report.starts, 2);
    let rows = live_pins(&t);
    assert_eq!(rows.len(), 1, "re-adoption must not create a second pin: {rows:?}");
    assert_eq!(rows[0].id, pin.id);
    assert_eq!(rows[0].status, PinStatus::Pinning);

    // Graceful shutdown hands the lease back; a new process (new holder) takes the same pin at once.
    smanager::app::shutdown(&peers).await;
    let rows = live_pins(&t);
    assert_eq!(rows[0].lease_holder, None, "shutdown released the lease");
    assert_eq!(
        rows[0].status,
        PinStatus::Pinning,
        "in-flight state is kept for the next start"
    );

    let peers2 = actors::start(deps(&t, &ipfs.api, "test/holder-2"));
    eventually(60, "the next process re-adopts the pin", || {
        let a = peers2.puller.clone();
        let t = &t;
        async move {
            let r = a.send(InFlight).await.ok()?;
            let rows = live_pins(t);
            (r.pins == vec![pin.id] && rows[0].lease_holder.as_deref() == Some("test/holder-2")).then_some(())
        }
    })
    .await;
    assert_eq!(live_pins(&t).len(), 1);
    smanager::app::shutdown(&peers2).await;
}
