//! Attempts count only real failures: a full sWorker and aborts by our own Sealer, Cleanup or operator do not spend
//! the file's attempts; and an Abort that arrives while the Puller's lease claim is in flight cancels the pin that
//! claim would have started (no `pin/add` reaches IPFS).

mod common;
#[path = "common/devnode.rs"]
mod devnode;

use std::sync::Arc;
use std::time::Duration;

use diesel::prelude::*;

use common::TestDb;
use devnode::Node;
use smanager::actors::picker::SetPaused;
use smanager::actors::puller::{Abort, Pull};
use smanager::db::pins::{self, FailKind, RetryPolicy};
use smanager::db::schema::files;
use smanager::db::{files as file_q, FileStatus, Lane, PinStatus};
use smanager::devnet::chain::{account, ChainConfig, DevChain};
use smanager::devnet::content::ContentStore;

fn insert_new(conn: &mut PgConnection, cid: &str) {
    diesel::sql_query(
        "INSERT INTO files (cid, size_bytes, tips, amount, expired_at, replicas, seen_by_event, seen_by_scan, status) \
         VALUES ($1, 1000, 1, 0, 0, 0, true, false, 'new')",
    )
    .bind::<diesel::sql_types::Text, _>(cid)
    .execute(conn)
    .expect("insert");
}

/// Queues a pin for the `new` file and claims its lease, as the Picker and the Puller do.
fn running_pin(conn: &mut PgConnection, cid: &str) -> smanager::db::Pin {
    let pin = file_q::queue_pin(conn, cid, Lane::Small, 1000)
        .expect("queue")
        .expect("queued");
    pins::claim(conn, pin.id, "test", 60).expect("claim").expect("claimed")
}

fn attempts(conn: &mut PgConnection, cid: &str) -> i32 {
    files::table
        .find(cid)
        .select(files::attempts)
        .first(conn)
        .expect("file")
}

#[test]
fn only_real_failures_spend_attempts() {
    let t = TestDb::migrated();
    let mut c = t.conn();
    let cid = "QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn";
    insert_new(&mut c, cid);
    let policy = RetryPolicy {
        base_delay_secs: 60,
        max_delay_secs: 3600,
        max_attempts: 3,
    };
    let attempt = |kind: FailKind, c: &mut PgConnection| {
        let pin = running_pin(c, cid);
        let status = pins::finish_err(c, pin.id, "boom", kind, &policy)
            .expect("finish")
            .expect("live");
        file_q::transition(c, cid, &[status], FileStatus::New, None, None).expect("back to new");
    };
    for _ in 0..5 {
        attempt(FailKind::NoSpace, &mut c);
        attempt(FailKind::Aborted, &mut c);
    }
    assert_eq!(attempts(&mut c, cid), 0, "ten pins, none the file's fault");
    attempt(FailKind::Error, &mut c);
    assert_eq!(attempts(&mut c, cid), 1);
    // The third real failure gives up (maxAttempts 3), however many waits came between.
    attempt(FailKind::NoSpace, &mut c);
    attempt(FailKind::Error, &mut c);
    let pin = running_pin(&mut c, cid);
    let status = pins::finish_err(&mut c, pin.id, "boom", FailKind::Error, &policy).expect("finish");
    assert_eq!(status, Some(FileStatus::Failed));
    assert_eq!(attempts(&mut c, cid), 3);
}

#[actix_rt::test]
async fn an_abort_during_the_claim_cancels_the_pin_it_would_start() {
    let content = ContentStore::new();
    let me = account("solo");
    let chain = DevChain::start(ChainConfig::quiet(200, vec![me]), Arc::new(content.clone()))
        .await
        .expect("chain");
    let node = Node::start(&chain.ws_url(), &me, &content, |s| {
        s.puller.lease_secs = 120; // no periodic adoption during the test
    });
    node.peers
        .picker
        .send(SetPaused(true))
        .await
        .expect("mailbox")
        .expect("paused");
    // Let the Puller's start-up adoption finish before the pin exists.
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    let cid = content.build(51, 100_000, false, true).cid;
    let pin = {
        let mut c = node.db.conn();
        insert_new(&mut c, &cid);
        file_q::queue_pin(&mut c, &cid, Lane::Small, 100_000)
            .expect("queue")
            .expect("queued")
    };
    // Hold the pin's row so the Puller's claim waits in PostgreSQL: the Abort surely arrives while it is in flight.
    let mut holder = node.db.conn();
    diesel::connection::SimpleConnection::batch_execute(
        &mut holder,
        &format!("BEGIN; SELECT 1 FROM pins WHERE id = {} FOR UPDATE;", pin.id),
    )
    .expect("lock the pin");
    node.peers.puller.do_send(Pull { pin_id: pin.id });
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let aborted = node
        .peers
        .puller
        .send(Abort {
            pin_id: pin.id,
            reason: "test".into(),
        })
        .await
        .expect("mailbox");
    assert!(aborted, "the Puller knew the pin (its claim was in flight)");
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    diesel::connection::SimpleConnection::batch_execute(&mut holder, "COMMIT").expect("release");
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(node.ipfs.stats().pin_requests, 0, "no pin/add after the abort");
    let detail = file_q::detail(&mut node.db.conn(), &cid).expect("detail").expect("row");
    assert_eq!(detail.pins[0].status, PinStatus::Aborted);
    assert_eq!(detail.file.attempts, 0);
    node.stop().await;
    chain.stop().await;
}

/// Waiting for space backs off: each wait in a row doubles the recheck delay (capped); sealing resets it.
#[test]
fn space_waits_back_off() {
    let t = TestDb::migrated();
    let mut c = t.conn();
    let cid = "QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn";
    insert_new(&mut c, cid);
    let policy = RetryPolicy {
        base_delay_secs: 60,
        max_delay_secs: 300,
        max_attempts: 3,
    };
    let mut delays = Vec::new();
    for _ in 0..5 {
        let d = file_q::record_space_wait(&mut c, cid, file_q::Source::Events, "full", &policy)
            .expect("record")
            .expect("was new");
        delays.push(d.num_seconds());
        file_q::transition(
            &mut c,
            cid,
            &[FileStatus::InsufficientSpace],
            FileStatus::New,
            None,
            None,
        )
        .expect("new");
    }
    assert_eq!(delays, [60, 120, 240, 300, 300]);
    // A pin that fails for space continues the same count.
    let pin = running_pin(&mut c, cid);
    pins::finish_err(&mut c, pin.id, "8016", FailKind::NoSpace, &policy).expect("finish");
    let waits: i32 = files::table
        .find(cid)
        .select(files::space_waits)
        .first(&mut c)
        .expect("row");
    assert_eq!(waits, 6);
    file_q::transition(
        &mut c,
        cid,
        &[FileStatus::InsufficientSpace],
        FileStatus::New,
        None,
        None,
    )
    .expect("new");
    let pin = running_pin(&mut c, cid);
    pins::finish_ok(&mut c, pin.id).expect("sealed");
    let waits: i32 = files::table
        .find(cid)
        .select(files::space_waits)
        .first(&mut c)
        .expect("row");
    assert_eq!(waits, 0, "sealing resets the count");
}
