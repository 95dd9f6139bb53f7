//! `smanager run` as a process: SIGTERM stops admission, hands in-flight pins back and exits 0 within 10 s, even with
//! the chain and sWorker down.

mod common;
#[path = "common/jsipfs.rs"]
mod jsipfs;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use diesel::prelude::*;

use common::TestDb;
use smanager::chain::{ChainEvent, FileOrder, IndexedBlock};
use smanager::db::schema::pins;
use smanager::db::{files, Lane, Pin, PinStatus};

const CID: &str = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

#[test]
fn sigterm_persists_in_flight_state_and_exits_0_within_10s() {
    let Some(ipfs) = jsipfs::JsIpfs::start(4) else { return };
    let t = TestDb::migrated();
    {
        let mut c = t.conn();
        files::apply_block(
            &mut c,
            &IndexedBlock {
                number: 1,
                hash: "0x1".into(),
                timestamp_ms: None,
                events: vec![ChainEvent::Ordered(FileOrder {
                    cid: CID.into(),
                    size: 10,
                    tips: 1,
                    owner: "alice".into(),
                })],
            },
        )
        .expect("order");
        files::queue_pin(&mut c, CID, Lane::Small, 10)
            .expect("queue")
            .expect("pin");
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smanager"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SMANAGER") {
            cmd.env_remove(k);
        }
    }
    let mut child = cmd
        .arg("run")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env(
            "SMANAGER__CHAIN__ACCOUNT",
            "cTM8suyN19VZb7JEPRNvtezyfpEAJyYxHkk1n5J4XEr6XroRa",
        )
        .env("SMANAGER__CHAIN__END_POINT", "ws://127.0.0.1:9")
        .env("SMANAGER__SWORKER__END_POINT", "http://127.0.0.1:9")
        .env("SMANAGER__IPFS__END_POINT", &ipfs.api)
        .env("SMANAGER__DATABASE__URL", &t.url)
        .env("SMANAGER__LOG__FORMAT", "json")
        .env("SMANAGER__ADMIN__BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start smanager run");

    let pin = |t: &TestDb| -> Pin {
        let mut c = t.conn();
        pins::table.select(Pin::as_select()).first(&mut c).expect("pin row")
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while pin(&t).lease_holder.is_none() {
        assert!(Instant::now() < deadline, "smanager never adopted the queued pin");
        assert!(child.try_wait().expect("wait").is_none(), "smanager exited early");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(pin(&t).status, PinStatus::Pinning);

    let term_at = Instant::now();
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(ok.success());
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            term_at.elapsed() < Duration::from_secs(10),
            "no exit within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = pin(&t);
    assert_eq!(p.status, PinStatus::Pinning, "in-flight pin kept for the next start");
    assert_eq!(p.lease_holder, None, "lease handed back");
    // JSON logs, one object per line.
    let first = stdout.lines().next().expect("some log output");
    let v: serde_json::Value = serde_json::from_str(first).expect("JSON log line");
    assert!(
        v.get("ts").is_some() && v.get("level").is_some() && v.get("msg").is_some(),
        "{first}"
    );
}
