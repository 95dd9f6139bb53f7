//! A real IPFS node (js-ipfs 0.66.1, Kubo RPC API) on loopback, from `test-peers/jsipfs` installed by
//! `scripts/test.sh` into `.cache/jsipfs`. Missing outside CI → the test is skipped loudly; missing under CI → fails.

use std::path::PathBuf;
use std::process::Command;

pub struct JsIpfs {
    pub api: String,
    dir: PathBuf,
    n: u8,
}

fn dir() -> PathBuf {
    std::env::var_os("JSIPFS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.cache/jsipfs")))
}

impl JsIpfs {
    /// Starts node `n` (1–9: API on port n5001) with a fresh repository, or `None` when js-ipfs is not installed.
    pub fn start(n: u8) -> Option<JsIpfs> {
        let dir = dir();
        if !dir.join("node_modules/.bin/jsipfs").exists() {
            let msg = format!(
                "js-ipfs is not installed in {} (scripts/test.sh installs it with npm)",
                dir.display()
            );
            if std::env::var("CI").is_ok_and(|v| !v.is_empty()) {
                panic!("{msg}");
            }
            eprintln!("!! SKIPPED: {msg}");
            return None;
        }
        let _ = std::fs::remove_dir_all(dir.join(format!("repo{n}")));
        let out = Command::new("bash")
            .arg(dir.join("start.sh"))
            .arg(n.to_string())
            .env("JSIPFS_DIR", &dir)
            .output()
            .expect("run start.sh");
        assert!(
            out.status.success(),
            "js-ipfs node {n} did not start: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Some(JsIpfs {
            api: format!("http://127.0.0.1:{n}5001"),
            dir,
            n,
        })
    }
}

impl Drop for JsIpfs {
    fn drop(&mut self) {
        let pid_file = self.dir.join(format!("daemon{}.pid", self.n));
        if let Ok(pid) = std::fs::read_to_string(&pid_file) {
            let _ = Command::new("kill").arg(pid.trim()).status();
            let _ = std::fs::remove_file(pid_file);
        }
    }
}
