//! Layered configuration: built-in defaults → `config/default.toml` → the file named by `--config` or
//! `SMANAGER_CONFIG` → `SMANAGER__SECTION__KEY` environment variables.
//!
//! Keys keep the TypeScript manager's vocabulary (`chain.endPoint`, `scheduler.minSrdRatio`, …) so that an operator's
//! `smanager-config.json` is accepted unchanged. Anything that does not fit — an unknown key, a value out of range —
//! is a [`ConfigError`], which every command turns into exit code 2.

mod settings;
mod validate;

pub use settings::*;

use std::path::{Path, PathBuf};

use config::{Config, File, FileFormat};
use serde_json::Value;

/// Environment variable naming the operator's config file (the TypeScript manager's name for it).
pub const CONFIG_ENV: &str = "SMANAGER_CONFIG";
/// Prefix of per-key environment overrides: `SMANAGER__SCHEDULER__MIN_SRD_RATIO=50`.
pub const ENV_PREFIX: &str = "SMANAGER__";
/// The repository's annotated defaults, read from the working directory when present.
pub const DEFAULT_FILE: &str = "config/default.toml";

/// A configuration problem, always naming the key and the expected form.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file that cannot be read or parsed.
    #[error("config file {path}: {reason}")]
    File { path: String, reason: String },
    /// A key nobody reads, most likely a typo.
    #[error("unknown configuration key `{key}` (from {source_name}); known keys are listed by `smanager config show`")]
    UnknownKey { key: String, source_name: String },
    /// A value outside what the key accepts.
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> Self {
        ConfigError::Invalid {
            key: key.to_string(),
            reason: reason.into(),
        }
    }
}

/// Where the configuration comes from; tests build one explicitly instead of touching the process environment.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Read `config/default.toml` from this directory when it exists.
    pub defaults_dir: Option<PathBuf>,
    /// The operator's file (TOML, YAML-free JSON or the TypeScript JSON), by flag or `SMANAGER_CONFIG`.
    pub file: Option<PathBuf>,
    /// `(name, value)` pairs; only names starting with `SMANAGER__` are used.
    pub env: Vec<(String, String)>,
}

impl Sources {
    /// The sources a command-line run uses: the working directory, `--config` or `SMANAGER_CONFIG`, the environment.
    pub fn from_process(flag: Option<PathBuf>) -> Self {
        let file = flag.or_else(|| std::env::var_os(CONFIG_ENV).map(PathBuf::from));
        Sources {
            defaults_dir: Some(PathBuf::from(".")),
            file,
            env: std::env::vars().collect(),
        }
    }
}

/// Load, merge and validate the configuration.
pub fn load(sources: &Sources) -> Result<Settings, ConfigError> {
    load_with_warnings(sources).map(|(s, _)| s)
}

/// [`load`], also returning what was accepted but deserves the operator's attention: unknown keys in a TypeScript
/// JSON config (TypeScript ignores them, so a config that ran there must load here) and strategy weights that sum
/// to 0 (TypeScript falls back to the default preset). Our own TOML stays strict.
pub fn load_with_warnings(sources: &Sources) -> Result<(Settings, Vec<String>), ConfigError> {
    let known = known_keys();
    let mut warnings = Vec::new();
    let defaults =
        toml::to_string(&Settings::default()).map_err(|e| ConfigError::invalid("<defaults>", e.to_string()))?;
    let mut builder = Config::builder().add_source(File::from_str(&defaults, FileFormat::Toml));

    if let Some(dir) = &sources.defaults_dir {
        let path = dir.join(DEFAULT_FILE);
        if path.is_file() {
            builder = builder.add_source(checked_file(&path, &known, &mut warnings)?);
        }
    }
    if let Some(path) = &sources.file {
        if !path.is_file() {
            return Err(ConfigError::File {
                path: path.display().to_string(),
                reason: "no such file".into(),
            });
        }
        builder = builder.add_source(checked_file(path, &known, &mut warnings)?);
    }
    for (name, value) in &sources.env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let key = env_key(rest, &known).ok_or_else(|| ConfigError::UnknownKey {
            key: name.clone(),
            source_name: "environment".into(),
        })?;
        builder = builder
            .set_override(key.as_str(), value.as_str())
            .map_err(|e| ConfigError::invalid(&key, e.to_string()))?;
    }

    let merged = builder
        .build()
        .map_err(|e| ConfigError::invalid("<config>", e.to_string()))?;
    let settings = typed(merged)?;
    let w = settings.scheduler.strategy.weights();
    if w.new_files_weight + w.db_files_weight == 0 {
        warnings.push(
            "configuration key `scheduler.strategy`: newFilesWeight + dbFilesWeight is 0; using the default preset (50/50), as TypeScript does"
                .to_string(),
        );
    }
    Ok((settings, warnings))
}

/// `settings` with `key=value` overrides applied (`scheduler.strategy=srdFirst`, `scheduler.minSrdRatio=50`), validated
/// like a loaded file: for `smanager plan --set` and the plan API, to try a configuration before switching to it.
/// A value is read as JSON when it parses (numbers, booleans, weight tables), else as a string.
pub fn with_overrides(settings: &Settings, sets: &[String]) -> Result<Settings, ConfigError> {
    let known = known_keys();
    let mut tree = serde_json::to_value(settings).map_err(|e| ConfigError::invalid("<config>", e.to_string()))?;
    for set in sets {
        let Some((key, value)) = set.split_once('=') else {
            return Err(ConfigError::invalid(set, "expected key=value"));
        };
        let key = key.trim();
        let canonical = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(key))
            .cloned()
            .ok_or_else(|| ConfigError::UnknownKey {
                key: key.to_string(),
                source_name: "--set".into(),
            })?;
        let value: Value = serde_json::from_str(value.trim()).unwrap_or_else(|_| Value::String(value.trim().into()));
        let mut node = &mut tree;
        let parts: Vec<&str> = canonical.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            if i + 1 == parts.len() {
                if let Some(map) = node.as_object_mut() {
                    map.insert((*part).to_string(), value.clone());
                }
            } else {
                if node.get(*part).is_none_or(|v| !v.is_object()) {
                    if let Some(map) = node.as_object_mut() {
                        map.insert((*part).to_string(), Value::Object(Default::default()));
                    }
                }
                match node.get_mut(*part) {
                    Some(child) => node = child,
                    None => return Err(ConfigError::invalid(&canonical, "cannot be set")),
                }
            }
        }
    }
    typed(tree)
}

/// The typed, validated settings from a merged tree; a type error names the key's path.
fn typed<'de, D: serde::Deserializer<'de>>(tree: D) -> Result<Settings, ConfigError>
where
    D::Error: std::fmt::Display,
{
    let settings: Settings = serde_path_to_error::deserialize(tree).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::invalid(&key, e.into_inner().to_string())
    })?;
    validate::validate(&settings)?;
    Ok(settings)
}

/// Every leaf key path in its canonical case, e.g. `scheduler.minSrdRatio`.
pub fn known_keys() -> Vec<String> {
    let probe = Settings {
        seal_coordinator: Some(SealCoordinatorSettings::default()),
        ..Default::default()
    };
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(&probe) {
        collect_leaves(&v, "", &mut out);
    }
    out
}

fn collect_leaves(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                // `scheduler.strategy` is either a preset name or a table of weights: both are leaves here.
                if path == "scheduler.strategy" {
                    out.push(path.clone());
                    for w in STRATEGY_WEIGHT_KEYS {
                        out.push(format!("{path}.{w}"));
                    }
                    continue;
                }
                collect_leaves(child, &path, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// Maps `SCHEDULER__MIN_SRD_RATIO` (any case, underscores optional) to `scheduler.minSrdRatio`.
fn env_key(rest: &str, known: &[String]) -> Option<String> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('_', "");
    let wanted: Vec<String> = rest.split("__").map(norm).collect();
    known
        .iter()
        .find(|k| {
            let parts: Vec<String> = k.split('.').map(norm).collect();
            parts == wanted
        })
        .cloned()
}

/// Reads one file and returns it as a source. Keys we do not know are rejected in TOML (naming them with their full
/// path); in JSON, the TypeScript manager's format, they are dropped with a warning, as TypeScript ignores them.
fn checked_file(
    path: &Path,
    known: &[String],
    warnings: &mut Vec<String>,
) -> Result<File<config::FileSourceString, FileFormat>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let format = match path.extension().and_then(|e| e.to_str()) {
        Some("json") => FileFormat::Json,
        Some("toml") | None => FileFormat::Toml,
        Some(other) => {
            return Err(ConfigError::File {
                path: path.display().to_string(),
                reason: format!("unsupported extension `.{other}` (expected .toml or .json)"),
            })
        }
    };
    let mut tree: Value = match format {
        FileFormat::Json => serde_json::from_str(&text).map_err(|e| ConfigError::File {
            path: path.display().to_string(),
            reason: format!("not valid JSON: {e}"),
        })?,
        _ => {
            let t: toml::Value = toml::from_str(&text).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                reason: format!("not valid TOML: {e}"),
            })?;
            serde_json::to_value(t).map_err(|e| ConfigError::File {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?
        }
    };
    let mut leaves = Vec::new();
    collect_leaves(&tree, "", &mut leaves);
    let mut dropped = false;
    for leaf in leaves {
        if leaf.is_empty() {
            continue;
        }
        if !known.iter().any(|k| k == &leaf || k.starts_with(&format!("{leaf}."))) {
            if !matches!(format, FileFormat::Json) {
                return Err(ConfigError::UnknownKey {
                    key: leaf,
                    source_name: path.display().to_string(),
                });
            }
            warnings.push(format!(
                "unknown configuration key `{leaf}` in {} ignored (TypeScript ignores unknown keys; check the spelling)",
                path.display()
            ));
            remove_path(&mut tree, &leaf);
            dropped = true;
        }
    }
    if dropped {
        return Ok(File::from_str(&tree.to_string(), format));
    }
    Ok(File::from_str(&text, format))
}

/// Removes a dotted leaf path from a JSON tree, and any object it leaves empty.
fn remove_path(tree: &mut Value, path: &str) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut node = tree;
    for p in &parts {
        match node.get_mut(*p) {
            Some(child) => node = child,
            None => return,
        }
    }
    if let Some(map) = node.as_object_mut() {
        map.remove(last);
    }
}

/// The effective configuration as TOML with secrets replaced by `"<redacted>"`.
pub fn redacted_toml(settings: &Settings) -> String {
    let mut s = settings.clone();
    s.database.url = redact_url(&s.database.url);
    if !s.admin.auth_token.is_empty() {
        s.admin.auth_token = REDACTED.into();
    }
    if let Some(sc) = s.seal_coordinator.as_mut() {
        if !sc.auth_token.is_empty() {
            sc.auth_token = REDACTED.into();
        }
    }
    toml::to_string_pretty(&s).unwrap_or_else(|e| format!("# cannot render config: {e}\n"))
}

const REDACTED: &str = "<redacted>";

/// Hides the password of a `postgres://user:password@host/db` URL.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((creds, host)) = rest.rsplit_once('@') {
            if let Some((user, _)) = creds.split_once(':') {
                return format!("{scheme}://{user}:{REDACTED}@{host}");
            }
        }
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src_with(file: Option<PathBuf>, env: &[(&str, &str)]) -> Sources {
        Sources {
            defaults_dir: None,
            file,
            env: env.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect(),
        }
    }

    const ALICE: &str = "cTM8suyN19VZb7JEPRNvtezyfpEAJyYxHkk1n5J4XEr6XroRa";

    #[test]
    fn env_overrides_map_to_canonical_keys() {
        let s = load(&src_with(
            None,
            &[
                ("SMANAGER__CHAIN__ACCOUNT", ALICE),
                ("SMANAGER__SCHEDULER__MIN_SRD_RATIO", "55"),
                ("SMANAGER__CHAIN__ENDPOINT", "ws://10.0.0.1:19944"),
                ("OTHER", "x"),
            ],
        ))
        .expect("valid");
        assert_eq!(s.scheduler.min_srd_ratio, 55);
        assert_eq!(s.chain.end_point, "ws://10.0.0.1:19944");
    }

    #[test]
    fn unknown_env_key_is_rejected_by_name() {
        let err = load(&src_with(None, &[("SMANAGER__SCHEDULER__NOPE", "1")])).expect_err("unknown");
        assert!(err.to_string().contains("SMANAGER__SCHEDULER__NOPE"), "{err}");
    }

    #[test]
    fn out_of_range_is_rejected_by_name() {
        let err = load(&src_with(
            None,
            &[
                ("SMANAGER__CHAIN__ACCOUNT", ALICE),
                ("SMANAGER__SCHEDULER__MIN_SRD_RATIO", "170"),
            ],
        ))
        .expect_err("range");
        assert!(err.to_string().contains("scheduler.minSrdRatio"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = load(&src_with(
            None,
            &[
                ("SMANAGER__CHAIN__ACCOUNT", ALICE),
                ("SMANAGER__SCHEDULER__MAX_PENDING_TASKS", "many"),
            ],
        ))
        .expect_err("type");
        assert!(err.to_string().contains("scheduler.maxPendingTasks"), "{err}");
    }

    #[test]
    fn redacts_database_password() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/d"),
            "postgres://u:<redacted>@h:5432/d"
        );
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
    }
}
