//! `smanager config check|show` as an operator runs them: exit codes and messages.

use std::process::Command;

fn smanager(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smanager"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for (k, _) in std::env::vars() {
        if k.starts_with("SMANAGER") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run smanager");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const TS: &str = "config/smanager-config.example.json";

fn edited(f: impl FnOnce(&mut serde_json::Value)) -> tempfile::NamedTempFile {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/config/smanager-config.example.json"
    ))
    .expect("example");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    f(&mut v);
    let file = tempfile::Builder::new().suffix(".json").tempfile().expect("tmp");
    std::fs::write(file.path(), v.to_string()).expect("write");
    file
}

#[test]
fn typescript_config_is_accepted_unchanged() {
    let (code, out, err) = smanager(&["config", "check", "--config", TS], &[]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn legacy_env_name_is_honoured() {
    let (code, out, err) = smanager(&["config", "check"], &[("SMANAGER_CONFIG", TS)]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn out_of_range_exits_2_naming_the_key() {
    let f = edited(|v| v["scheduler"]["minSrdRatio"] = 170.into());
    let path = f.path().to_string_lossy().into_owned();
    let (code, _, err) = smanager(&["config", "check", "--config", &path], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("scheduler.minSrdRatio"), "{err}");
    // Every command refuses an invalid configuration, not only `config check`.
    let (code, _, err) = smanager(&["status", "--config", &path], &[]);
    assert_eq!(code, 2, "{err}");
}

/// TypeScript ignores unknown keys, so a JSON config that ran there loads here, with a warning naming key and file.
#[test]
fn unknown_key_in_typescript_json_warns_and_loads() {
    let f = edited(|v| {
        v["scheduler"]["maxPendingTask"] = 3.into();
        v["scheduler"]["minSrdRatio"] = 55.into();
    });
    let path = f.path().to_string_lossy().into_owned();
    let (code, out, err) = smanager(&["config", "show", "--config", &path], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("scheduler.maxPendingTask") && err.contains(&path), "{err}");
    assert!(
        out.contains("minSrdRatio = 55"),
        "the rest of the file still applies: {out}"
    );
}

/// TypeScript's own weight rules: absent newFilesWeight is 100, existedFilesWeight is accepted, weights summing to
/// 0 fall back to the default preset with a warning instead of refusing to start.
#[test]
fn typescript_strategy_weights_load_as_in_typescript() {
    let f = edited(|v| v["scheduler"]["strategy"] = serde_json::json!({"existedFilesWeight": 5}));
    let (code, out, err) = smanager(&["config", "show", "--config", &f.path().to_string_lossy()], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("newFilesWeight = 100"), "{out}");
    let f = edited(|v| v["scheduler"]["strategy"] = serde_json::json!({"dbFilesWeight": 0, "newFilesWeight": 0}));
    let (code, out, err) = smanager(&["config", "check", "--config", &f.path().to_string_lossy()], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("default preset"), "{err}");
}

#[test]
fn unknown_key_exits_2_naming_it() {
    let f = tempfile::Builder::new().suffix(".toml").tempfile().expect("tmp");
    std::fs::write(f.path(), "[scheduler]\nmaxPendingTask = 3\n").expect("write");
    let path = f.path().to_string_lossy().into_owned();
    let (code, _, err) = smanager(&["config", "check", "--config", &path], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("scheduler.maxPendingTask"), "{err}");
    let (code, _, err) = smanager(&["config", "check", "--config", TS], &[("SMANAGER__CHAIN__NOPE", "1")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("SMANAGER__CHAIN__NOPE"), "{err}");
}

#[test]
fn bad_account_and_wrong_types_exit_2() {
    let f = edited(|v| v["chain"]["account"] = "not-an-address".into());
    let (code, _, err) = smanager(&["config", "check", "--config", &f.path().to_string_lossy()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("chain.account"), "{err}");
    let f = edited(|v| v["scheduler"]["strategy"] = "fastest".into());
    let (code, _, err) = smanager(&["config", "check", "--config", &f.path().to_string_lossy()], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("scheduler.strategy"), "{err}");
}

#[test]
fn env_overrides_the_file() {
    let (code, out, err) = smanager(
        &["config", "show", "--config", TS],
        &[("SMANAGER__SCHEDULER__MIN_SRD_RATIO", "55")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("minSrdRatio = 55"), "{out}");
}

#[test]
fn show_redacts_secrets() {
    let (code, out, err) = smanager(
        &["config", "show", "--config", TS],
        &[("SMANAGER__DATABASE__URL", "postgres://u:hunter2@db/x")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("secret-token"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
    assert!(out.contains("nodeUUID = \"node-1\""), "{out}");
}

#[test]
fn default_toml_equals_the_built_in_defaults() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml")).expect("read");
    let parsed: smanager::config::Settings = toml::from_str(&text).expect("default.toml parses");
    assert_eq!(parsed, smanager::config::Settings::default());
}

#[test]
fn annotated_example_is_valid() {
    let (code, out, err) = smanager(&["config", "check", "--config", "config/smanager.example.toml"], &[]);
    assert_eq!(code, 0, "{out}{err}");
}
