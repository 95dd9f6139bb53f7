//! Logs on stdout through `log` + `env_logger`: plain text on a terminal, one JSON object per line otherwise (or
//! when asked), so a shipper can parse them. Levels per module come from `RUST_LOG` (default `info`).

use std::io::{IsTerminal, Write};

use log::kv::{Key, Value, VisitSource};

use crate::config::LogFormat;

/// Installs the global logger once, on stdout; later calls are ignored (tests start several systems in one process).
pub fn init(format: LogFormat) {
    init_on(format, env_logger::Target::Stdout);
}

/// Installs the global logger on stderr, for a command whose stdout is its report (`smanager bench`'s JSON line).
pub fn init_on_stderr(format: LogFormat) {
    init_on(format, env_logger::Target::Stderr);
}

fn init_on(format: LogFormat, target: env_logger::Target) {
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => match target {
            env_logger::Target::Stderr => !std::io::stderr().is_terminal(),
            _ => !std::io::stdout().is_terminal(),
        },
    };
    let mut builder = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"));
    builder.target(target);
    if json {
        builder.format(|buf, record| {
            let mut obj = serde_json::Map::new();
            obj.insert(
                "ts".into(),
                chrono::Utc::now()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    .into(),
            );
            obj.insert("level".into(), record.level().as_str().into());
            obj.insert("target".into(), record.target().into());
            obj.insert("msg".into(), record.args().to_string().into());
            if let Some(actor) = record.target().strip_prefix("smanager::") {
                obj.entry("actor").or_insert_with(|| actor.into());
            }
            let mut fields = Fields(&mut obj);
            let _ = record.key_values().visit(&mut fields);
            writeln!(buf, "{}", serde_json::Value::Object(obj))
        });
    } else {
        builder.format(|buf, record| {
            let mut extra = String::new();
            let _ = record.key_values().visit(&mut TextFields(&mut extra));
            writeln!(
                buf,
                "{} {:<5} {} {}{}",
                chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
                record.level(),
                record.target(),
                record.args(),
                extra
            )
        });
    }
    let _ = builder.try_init();
}

struct Fields<'a>(&'a mut serde_json::Map<String, serde_json::Value>);

impl<'kvs> VisitSource<'kvs> for Fields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        let v = if let Some(n) = value.to_i64() {
            serde_json::Value::from(n)
        } else if let Some(n) = value.to_u64() {
            serde_json::Value::from(n)
        } else if let Some(b) = value.to_bool() {
            serde_json::Value::from(b)
        } else {
            serde_json::Value::from(value.to_string())
        };
        self.0.insert(key.as_str().to_string(), v);
        Ok(())
    }
}

struct TextFields<'a>(&'a mut String);

impl<'kvs> VisitSource<'kvs> for TextFields<'_> {
    fn visit_pair(&mut self, key: Key<'kvs>, value: Value<'kvs>) -> Result<(), log::kv::Error> {
        self.0.push_str(&format!(" {key}={value}"));
        Ok(())
    }
}
