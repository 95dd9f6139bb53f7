//! The README's main command, as written: `smanager devnet --duration 120 --seed 1` exits 0 and its summary shows
//! sealed and cleaned files, with failures only for CIDs the scenario made unavailable. Without DATABASE_URL it
//! makes its own throwaway PostgreSQL cluster, which this test exercises too.

use std::process::Command;

#[test]
fn devnet_runs_the_whole_stack_and_summarizes() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smanager"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SMANAGER") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args(["devnet", "--duration", "120", "--seed", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run smanager devnet");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "devnet failed:\n{stdout}\n{stderr}");
    let endpoints = stdout
        .lines()
        .find_map(|l| l.strip_prefix("endpoints: "))
        .unwrap_or_else(|| panic!("no endpoints line:\n{stdout}"));
    let e: serde_json::Value = serde_json::from_str(endpoints).expect("endpoints JSON");
    for k in ["chain", "sworker", "ipfs", "admin", "database"] {
        assert!(e[k].is_string(), "endpoints.{k} missing: {endpoints}");
    }
    assert!(
        stdout.lines().filter(|l| l.starts_with("progress: ")).count() >= 10,
        "{stdout}"
    );
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("summary: "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    let s: serde_json::Value = serde_json::from_str(summary).expect("summary JSON");
    for k in ["orders", "indexed", "pinned", "sealed", "cleaned", "failed"] {
        assert!(s[k].is_number(), "summary.{k} missing: {summary}");
    }
    assert!(s["orders"].as_u64() > Some(10), "{summary}");
    assert!(
        s["indexed"].as_u64() >= Some(s["orders"].as_u64().unwrap_or(0) - 4),
        "{summary}"
    );
    assert!(s["sealed"].as_u64() > Some(0), "{summary}");
    assert!(s["cleaned"].as_u64() > Some(0), "{summary}");
    assert_eq!(
        s["failed"], s["failed_unavailable"],
        "only unavailable CIDs may fail: {summary}"
    );
}

/// `smanager devnet --peers-only`: the chain, sWorker and IPFS simulators alone (no PostgreSQL, no smanager), with
/// the same `endpoints:` line, so a container or the TypeScript manager can be pointed at them like at crust-node.
#[test]
fn peers_only_serves_the_simulators_alone() {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smanager"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SMANAGER") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    let out = cmd
        .args([
            "devnet",
            "--peers-only",
            "--duration",
            "4",
            "--block-ms",
            "200",
            "--report-secs",
            "1",
            "--chain-port",
            "0",
            "--sworker-port",
            "0",
            "--ipfs-port",
            "0",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("run smanager devnet --peers-only");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let endpoints = stdout
        .lines()
        .find_map(|l| l.strip_prefix("endpoints: "))
        .unwrap_or_else(|| panic!("no endpoints line:\n{stdout}"));
    let e: serde_json::Value = serde_json::from_str(endpoints).expect("endpoints JSON");
    for k in ["chain", "sworker", "ipfs", "account"] {
        assert!(e[k].is_string(), "endpoints.{k} missing: {endpoints}");
    }
    assert!(e.get("admin").is_none() && e.get("database").is_none(), "{endpoints}");
    let summary = stdout
        .lines()
        .find_map(|l| l.strip_prefix("summary: "))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    let s: serde_json::Value = serde_json::from_str(summary).expect("summary JSON");
    assert!(s["blocks"].as_u64().is_some_and(|b| b >= 5), "{summary}");
    assert_eq!(s["pin_requests"], 0, "nobody pulls without a manager: {summary}");
}
