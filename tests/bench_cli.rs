//! `smanager bench` at a small size: it runs all three phases (scan, catch-up, pick latency) against real processes and
//! PostgreSQL and reports consistent counts. Speed is judged from the full-size report, never here.

use std::process::Command;

#[test]
fn bench_reports_scan_catchup_and_pick_latency() {
    let out = Command::new(env!("CARGO_BIN_EXE_smanager"))
        .args(["bench", "--files", "3000", "--blocks", "100", "--orders-per-block", "5"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("SMANAGER_CONFIG")
        .output()
        .expect("run smanager bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bench failed:\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON line:\n{stdout}\n{stderr}"));
    let r: serde_json::Value = serde_json::from_str(line).expect("bench JSON");
    let n = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} missing: {line}"));
    // Every FilesV2 entry of the genesis pre-fill is scanned (plus the CIDs the catch-up blocks ordered).
    assert!(n("scanned_files") >= 3000.0, "{line}");
    assert_eq!(n("catchup_blocks"), 100.0, "{line}");
    assert_eq!(n("catchup_orders"), 500.0, "{line}");
    for k in [
        "orders_per_sec",
        "catchup_blocks_per_sec",
        "peak_rss_bytes",
        "pick_latency_ms_p50",
    ] {
        assert!(n(k) > 0.0, "{k} not positive: {line}");
    }
    assert!(n("pick_latency_ms_p50") <= n("pick_latency_ms_max"), "{line}");
}
