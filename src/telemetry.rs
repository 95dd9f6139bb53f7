//! The hourly telemetry report, in the TypeScript manager's shape (crust-smanager 1.0.3 `TelemetryData`), POSTed to
//! `telemetry.endPoint` (skipped when empty, and when the sWorker does not answer `/workload`, as TypeScript does).
//! Counts cover the last 24 hours; sizes in `pinStats` and `queueStats` are MB, as TypeScript stores them.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::actors::Deps;
use crate::config::Settings;
use crate::db::state::{self, GroupInfo};
use crate::db::stats::{self, TelemetryCounts};
use crate::sworker::Workload;

/// Builds and sends one report; failures are logged, never fatal.
pub async fn report(deps: Deps, started: Instant) {
    let url = deps.settings.telemetry.end_point.clone();
    if url.is_empty() {
        return;
    }
    let workload = match deps.sworker.workload().await {
        Ok(w) => w,
        Err(e) => {
            log::debug!(target: "smanager::telemetry", "skipped: sWorker workload unavailable ({e})");
            return;
        }
    };
    let since = chrono::Utc::now() - chrono::Duration::hours(24);
    let snapshot = deps
        .db
        .run(move |c| {
            let counts = stats::telemetry_counts(c, since)?;
            let group: Option<GroupInfo> = state::kv_get(c, state::KV_GROUP)?;
            Ok((counts, group))
        })
        .await;
    let (counts, group) = match snapshot {
        Ok(s) => s,
        Err(e) => {
            log::warn!(target: "smanager::telemetry", "skipped: {e}");
            return;
        }
    };
    let payload = build(
        &deps.settings,
        started.elapsed().as_secs(),
        &workload,
        &counts,
        group.as_ref(),
    );
    let client = awc::Client::builder().timeout(Duration::from_secs(120)).finish();
    match client.post(&url).send_json(&payload).await {
        Ok(r) if r.status().is_success() => log::info!(target: "smanager::telemetry", "report sent"),
        Ok(r) => log::warn!(target: "smanager::telemetry", "{url} answered {}", r.status()),
        Err(e) => log::warn!(target: "smanager::telemetry", "{url}: {e}"),
    }
}

const MB: i64 = 1024 * 1024;

/// The report body. Pure, so its shape is unit-tested against TypeScript's type.
pub fn build(
    settings: &Settings,
    uptime_secs: u64,
    workload: &Workload,
    counts: &TelemetryCounts,
    group: Option<&GroupInfo>,
) -> Value {
    let (new_w, db_w) = crate::decision::round::source_weights(settings);
    let total = f64::from(new_w + db_w).max(1.0);
    let mut scheduler = serde_json::to_value(&settings.scheduler).unwrap_or(Value::Null);
    if let Some(map) = scheduler.as_object_mut() {
        // TypeScript reports its normalized strategy: percentages of db and new.
        map.insert(
            "strategy".into(),
            json!({"dbFilesWeight": f64::from(db_w) * 100.0 / total, "newFilesWeight": f64::from(new_w) * 100.0 / total}),
        );
    }
    json!({
        "chainAccount": settings.chain.account,
        "smangerInfo": {
            "version": format!("smanager-rs/{}", env!("CARGO_PKG_VERSION")),
            "uptime": uptime_secs,
            "schedulerConfig": scheduler,
        },
        "pinStats": {
            "sealingCount": counts.sealing,
            "sealedCount": counts.sealed,
            "failedCount": counts.failed,
            "sealedSize": counts.sealed_bytes / MB,
        },
        "sworker": {
            "srd": {
                "srd_complete": workload.srd_complete_gib,
                "srd_remaining_task": workload.srd_remaining_task_gib,
                "disk_available_for_srd": workload.disk_available_for_srd_gib,
                "disk_available": workload.disk_available_gib,
                "disk_volume": workload.disk_volume_gib,
                "sys_disk_available": workload.sys_disk_available_gib,
                "srd_volumn_count": workload.srd_volumes,
            },
            "files": {
                "lost": {"num": workload.lost_files, "size": workload.lost_bytes},
                "pending": {"num": workload.pending_files, "size": workload.pending_sealed_bytes},
                "valid": {"num": workload.valid_files, "size": workload.valid_bytes},
            },
        },
        "queueStats": {
            "pendingCount": counts.pending,
            "pendingSizeTotal": counts.pending_bytes / MB,
        },
        "cleanupStats": {
            "deletedCount": counts.deleted,
        },
        "groupInfo": {
            "groupAccount": group.and_then(|g| g.owner.clone()).unwrap_or_default(),
            "totalMembers": group.map_or(0, |g| g.members.len()),
            "nodeIndex": group.and_then(|g| g.node_index).unwrap_or(0),
        },
        "hasSealCoordinator": settings.seal_coordinator.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of TypeScript's `TelemetryData` (src/types/telemetry.d.ts), with its nesting, and nothing of ours.
    #[test]
    fn report_has_typescripts_shape() {
        let w = Workload {
            srd_complete_gib: 100,
            srd_volumes: 3,
            valid_files: 2,
            valid_bytes: 2048,
            ..Default::default()
        };
        let c = TelemetryCounts {
            sealing: 1,
            sealed: 4,
            sealed_bytes: 8 * MB,
            failed: 1,
            pending: 5,
            pending_bytes: 3 * MB,
            deleted: 2,
        };
        let r = build(&Settings::default(), 60, &w, &c, None);
        let keys = |v: &Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
            k.sort();
            k
        };
        assert_eq!(
            keys(&r),
            [
                "chainAccount",
                "cleanupStats",
                "groupInfo",
                "hasSealCoordinator",
                "pinStats",
                "queueStats",
                "smangerInfo",
                "sworker"
            ]
        );
        assert_eq!(keys(&r["sworker"]), ["files", "srd"]);
        assert_eq!(r["sworker"]["srd"]["srd_volumn_count"], 3);
        assert_eq!(keys(&r["sworker"]["files"]), ["lost", "pending", "valid"]);
        assert_eq!(keys(&r["queueStats"]), ["pendingCount", "pendingSizeTotal"]);
        assert_eq!(r["queueStats"]["pendingSizeTotal"], 3);
        assert_eq!(
            keys(&r["pinStats"]),
            ["failedCount", "sealedCount", "sealedSize", "sealingCount"]
        );
        assert_eq!(r["pinStats"]["sealedSize"], 8);
        assert_eq!(keys(&r["cleanupStats"]), ["deletedCount"]);
        assert_eq!(keys(&r["groupInfo"]), ["groupAccount", "nodeIndex", "totalMembers"]);
        assert_eq!(r["groupInfo"]["groupAccount"], "");
        assert_eq!(r["smangerInfo"]["schedulerConfig"]["strategy"]["newFilesWeight"], 50.0);
    }
}
