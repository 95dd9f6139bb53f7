//! `smanager migrate | status | files | retry` against a real database.

mod common;

use std::process::Command;

use common::TestDb;
use diesel::RunQueryDsl;
use smanager::chain::{ChainEvent, FileOrder, IndexedBlock};
use smanager::db::{files, FileStatus};

fn smanager(t: &TestDb, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smanager"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SMANAGER") {
            cmd.env_remove(k);
        }
    }
    cmd.env("SMANAGER__DATABASE__URL", &t.url);
    let out = cmd.output().expect("run smanager");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const CID: &str = "QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn";

#[test]
fn migrate_status_files_retry() {
    let t = TestDb::empty();
    let (code, out, err) = smanager(&t, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("migrations dir")
        .count();
    assert!(out.contains(&format!("applied {migrations} migration")), "{out}");
    let (code, out, _) = smanager(&t, &["migrate"]);
    assert_eq!(code, 0);
    assert!(out.contains("schema is current"), "{out}");

    let mut c = t.conn();
    let block = IndexedBlock {
        number: 7,
        hash: "0xabc".into(),
        timestamp_ms: Some(1),
        events: vec![ChainEvent::Ordered(FileOrder {
            cid: CID.into(),
            size: 1234,
            tips: 99,
            owner: "cTM8suyN19VZb7JEPRNvtezyfpEAJyYxHkk1n5J4XEr6XroRa".into(),
        })],
    };
    files::apply_block(&mut c, &block).expect("apply");
    files::transition(&mut c, CID, &[FileStatus::New], FileStatus::Failed, Some("test"), None).expect("fail it");
    // As if it had failed every attempt, weeks ago.
    diesel::sql_query(
        "UPDATE files SET attempts = 8, created_at = now() - interval '40 days', \
         pursued_since = now() - interval '40 days'",
    )
    .execute(&mut c)
    .expect("age it");

    let (code, out, err) = smanager(&t, &["status", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["files"]["failed"], 1);
    assert_eq!(v["indexed_block"], 7);

    let (code, out, _) = smanager(&t, &["files", "list", "--status", "failed", "--json"]);
    assert_eq!(code, 0);
    let rows: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(rows[0]["cid"], CID);
    let (code, out, _) = smanager(&t, &["files", "show", CID]);
    assert_eq!(code, 0);
    assert!(out.contains("1234 bytes") && out.contains("cTM8su"), "{out}");
    let (code, _, err) = smanager(&t, &["files", "list", "--status", "bogus"]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown file status `bogus`"), "{err}");

    let (code, _, err) = smanager(&t, &["retry", "--status", "sealed"]);
    assert_eq!(code, 1, "sealed files are not retryable: {err}");
    let (code, out, err) = smanager(&t, &["retry", CID]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 file(s)"), "{out}");
    let (_, out, _) = smanager(&t, &["files", "show", CID, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["file"]["status"], "new");
    // A fresh start: no attempts counted, and the give-up age restarts (the first-seen time stays).
    assert_eq!(v["file"]["attempts"], 0);
    let since = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(v["file"][k].as_str().unwrap_or_else(|| panic!("{k}: {v}")))
            .unwrap_or_else(|e| panic!("{k}: {e}"))
    };
    assert!(since("pursued_since") - since("created_at") > chrono::Duration::days(39));
    let (code, _, _) = smanager(&t, &["files", "show", "QmNope"]);
    assert_eq!(code, 1);
}
