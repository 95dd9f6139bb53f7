//! The hourly telemetry report, in the TypeScript manager's shape, POSTed to `telemetry.endPoint` (skipped when
//! empty, and when the sWorker does not answer `/workload`, as the TypeScript manager did).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::actors::Deps;
use crate::db::state::{self, GroupInfo};
use crate::db::stats;

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
    let snapshot = deps
        .db
        .run(|c| {
            let st = stats::snapshot(c)?;
            let group: Option<GroupInfo> = state::kv_get(c, state::KV_GROUP)?;
            Ok((st, group))
        })
        .await;
    let (st, group) = match snapshot {
        Ok(s) => s,
        Err(e) => {
            log::warn!(target: "smanager::telemetry", "skipped: {e}");
            return;
        }
    };
    let n = |k: &str| st.files.get(k).copied().unwrap_or(0);
    let payload = json!({
        "chainAccount": deps.settings.chain.account,
        "smangerInfo": {
            "version": format!("smanager-rs/{}", env!("CARGO_PKG_VERSION")),
            "uptime": started.elapsed().as_secs(),
            "schedulerConfig": deps.settings.scheduler,
        },
        "pinStats": {
            "sealingCount": n("queued") + n("pinning"),
            "sealedCount": st.last_hour.get("pinned").copied().unwrap_or(0),
            "failedCount": st.last_hour.get("failed").copied().unwrap_or(0),
            "sealedSize": workload.valid_bytes,
        },
        "sworker": {
            "srd_complete": workload.srd_complete_gib,
            "srd_remaining_task": workload.srd_remaining_task_gib,
            "disk_available_for_srd": workload.disk_available_for_srd_gib,
            "disk_available": workload.disk_available_gib,
            "disk_volume": workload.disk_volume_gib,
            "sys_disk_available": workload.sys_disk_available_gib,
            "srd_volumn_count": 1,
            "files": {
                "lost": {"num": workload.lost_files, "size": workload.lost_bytes},
                "pending": {"num": workload.pending_files, "size": workload.pending_sealed_bytes},
                "valid": {"num": workload.valid_files, "size": workload.valid_bytes},
            },
        },
        "queueStats": {
            "newCount": n("new"),
            "pendingReplicaCount": n("pending_replica"),
            "insufficientSpaceCount": n("insufficient_space"),
            "pinErrorCount": n("pin_error"),
            "failedCount": n("failed"),
        },
        "cleanupStats": {
            "deletedCount": st.cleanups.get("done").copied().unwrap_or(0),
            "pendingCount": st.cleanups.get("pending").copied().unwrap_or(0),
        },
        "groupInfo": {
            "groupAccount": group.as_ref().and_then(|g| g.owner.clone()),
            "totalMembers": group.as_ref().map_or(0, |g| g.members.len()),
            "nodeIndex": group.as_ref().and_then(|g| g.node_index),
        },
        "hasSealCoordinator": deps.settings.seal_coordinator.is_some(),
    });
    let client = awc::Client::builder().timeout(Duration::from_secs(120)).finish();
    match client.post(&url).send_json(&payload).await {
        Ok(r) if r.status().is_success() => log::info!(target: "smanager::telemetry", "report sent"),
        Ok(r) => log::warn!(target: "smanager::telemetry", "{url} answered {}", r.status()),
        Err(e) => log::warn!(target: "smanager::telemetry", "{url}: {e}"),
    }
}
