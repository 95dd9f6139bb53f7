//! chopsticks (installed by `scripts/test.sh` into `.cache/chopsticks`) on loopback: the Rococo Asset Hub genesis, or
//! one of Crust's real runtimes from `../shared/crust`. Stopped when dropped.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Chopsticks {
    pub port: u16,
    pid_file: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for Chopsticks {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.pid_file) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn installed() -> Option<PathBuf> {
    crate::common::npm_peer("CHOPSTICKS_DIR", "chopsticks", "node_modules/.bin/chopsticks")
}

fn launch(dir: &Path, config: Option<&Path>, tmp: Option<tempfile::TempDir>) -> Chopsticks {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let mut cmd = Command::new("bash");
    cmd.arg(dir.join("start.sh"))
        .arg(port.to_string())
        .env("CHOPSTICKS_DIR", dir);
    if let Some(c) = config {
        cmd.arg(c);
    }
    let out = cmd.output().expect("start.sh");
    let c = Chopsticks {
        port,
        pid_file: dir.join(format!("chopsticks-{port}.pid")),
        _tmp: tmp,
    };
    assert!(
        out.status.success(),
        "chopsticks did not start: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    c
}

/// The Rococo Asset Hub genesis (a V14+ runtime), or `None` when chopsticks is not installed.
pub fn asset_hub() -> Option<Chopsticks> {
    Some(launch(&installed()?, None, None))
}

/// `chain_spec` (a file of the Crust artefacts folder) with manual block building, mock signatures, Crust's
/// registered types and a database file (without one, blocks far behind the head read back as #0).
pub fn crust(artefacts: &Path, chain_spec: &str) -> Option<Chopsticks> {
    let dir = installed()?;
    let tmp = tempfile::tempdir().expect("tempdir");
    let types: serde_json::Value = serde_json::from_slice(
        &std::fs::read(artefacts.join("chopsticks-registered-types.json")).expect("registered types"),
    )
    .expect("registered types JSON");
    let mut config = serde_json::json!({
        "genesis": artefacts.join(chain_spec),
        "mock-signature-host": true,
        "build-block-mode": "Manual",
        "db": tmp.path().join("db.sqlite"),
    });
    if let (Some(c), Some(t)) = (config.as_object_mut(), types.as_object()) {
        c.extend(t.clone());
    }
    let config_path = tmp.path().join("config.json");
    std::fs::write(&config_path, config.to_string()).expect("write config");
    Some(launch(&dir, Some(&config_path), Some(tmp)))
}
