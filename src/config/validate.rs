//! Range and form checks that serde cannot express. Each error names the key and what it expects.

use std::net::SocketAddr;

use super::{ConfigError, Settings};

pub(super) fn validate(s: &Settings) -> Result<(), ConfigError> {
    if !s.chain.account.is_empty() {
        crate::chain::ss58::decode(&s.chain.account)
            .map_err(|e| ConfigError::invalid("chain.account", format!("expected an SS58 address (e.g. cT…), {e}")))?;
    }
    url_with(
        "chain.endPoint",
        &s.chain.end_point,
        &["ws://", "wss://", "http://", "https://"],
    )?;
    url_with("sworker.endPoint", &s.sworker.end_point, &["http://", "https://"])?;
    url_with("ipfs.endPoint", &s.ipfs.end_point, &["http://", "https://"])?;
    if !s.telemetry.end_point.is_empty() {
        url_with("telemetry.endPoint", &s.telemetry.end_point, &["http://", "https://"])?;
    }
    at_least("chain.finalizedTimeoutSecs", s.chain.finalized_timeout_secs, 1)?;
    at_least("chain.pollIntervalMs", s.chain.poll_interval_ms, 10)?;
    at_least("chain.reconnectMinSecs", s.chain.reconnect_min_secs, 1)?;
    if s.chain.reconnect_max_secs < s.chain.reconnect_min_secs {
        return Err(ConfigError::invalid(
            "chain.reconnectMaxSecs",
            "expected a number of seconds no smaller than chain.reconnectMinSecs",
        ));
    }
    between("chain.scanPageSize", s.chain.scan_page_size.into(), 1, 1000)?;
    between("chain.scanBatchSize", s.chain.scan_batch_size.into(), 1, 1000)?;
    between("chain.scanParallelism", s.chain.scan_parallelism.into(), 1, 64)?;
    between("chain.scanWriteRows", s.chain.scan_write_rows.into(), 1, 100_000)?;
    at_least("chain.groupRefreshSecs", s.chain.group_refresh_secs, 1)?;

    let sc = &s.scheduler;
    between("scheduler.minSrdRatio", sc.min_srd_ratio.into(), 0, 100)?;
    between("scheduler.maxPendingTasks", sc.max_pending_tasks.into(), 1, 100_000)?;
    if sc.min_file_size > 0 && sc.max_file_size > 0 && sc.min_file_size > sc.max_file_size {
        return Err(ConfigError::invalid(
            "scheduler.minFileSize",
            format!(
                "expected a size in MB no larger than scheduler.maxFileSize ({})",
                sc.max_file_size
            ),
        ));
    }
    if sc.max_replicas > 0 && sc.min_replicas > sc.max_replicas {
        return Err(ConfigError::invalid(
            "scheduler.minReplicas",
            format!(
                "expected a count no larger than scheduler.maxReplicas ({})",
                sc.max_replicas
            ),
        ));
    }
    between("scheduler.largeLanePercent", sc.large_lane_percent.into(), 0, 100)?;
    at_least("scheduler.largeFileSizeMb", sc.large_file_size_mb, 1)?;
    if !(sc.space_factor.is_finite() && sc.space_factor >= 1.0) {
        return Err(ConfigError::invalid(
            "scheduler.spaceFactor",
            "expected a number ≥ 1.0 (2.2 in the TypeScript manager)",
        ));
    }
    between("scheduler.batchSize", sc.batch_size.into(), 1, 10_000)?;
    at_least("scheduler.tickSecs", sc.tick_secs, 1)?;

    if let Some(coord) = &s.seal_coordinator {
        url_with("sealCoordinator.endPoint", &coord.end_point, &["http://", "https://"])?;
        if coord.auth_scheme.trim().is_empty() || coord.auth_scheme.chars().any(|c| c.is_control()) {
            return Err(ConfigError::invalid(
                "sealCoordinator.authScheme",
                "expected the word sent before the token: `Bearer`, or `Bear:` for a TypeScript-era coordinator",
            ));
        }
        if coord.node_uuid.trim().is_empty() {
            return Err(ConfigError::invalid(
                "sealCoordinator.nodeUUID",
                "expected a non-empty id naming this node",
            ));
        }
    }

    url_with("database.url", &s.database.url, &["postgres://", "postgresql://"])?;
    between("database.poolSize", s.database.pool_size.into(), 1, 256)?;
    at_least("database.connectTimeoutSecs", s.database.connect_timeout_secs, 1)?;
    s.admin.bind.parse::<SocketAddr>().map_err(|_| {
        ConfigError::invalid(
            "admin.bind",
            "expected host:port with an IP address, e.g. 127.0.0.1:8686",
        )
    })?;

    at_least("admin.chainStaleSecs", s.admin.chain_stale_secs, 1)?;
    at_least("puller.baseTimeoutSecs", s.puller.base_timeout_secs, 1)?;
    at_least("puller.minBytesPerSec", s.puller.min_bytes_per_sec, 1)?;
    at_least("puller.stallTimeoutSecs", s.puller.stall_timeout_secs, 1)?;
    at_least("puller.leaseSecs", s.puller.lease_secs, 2)?;
    at_least("sealer.checkIntervalSecs", s.sealer.check_interval_secs, 1)?;
    at_least("sealer.stallChecks", s.sealer.stall_checks.into(), 1)?;
    at_least("retry.baseDelaySecs", s.retry.base_delay_secs, 1)?;
    if s.retry.max_delay_secs < s.retry.base_delay_secs {
        return Err(ConfigError::invalid(
            "retry.maxDelaySecs",
            "expected a number of seconds no smaller than retry.baseDelaySecs",
        ));
    }
    at_least("retry.maxAttempts", s.retry.max_attempts.into(), 1)?;
    at_least("retry.giveUpDays", s.retry.give_up_days.into(), 1)?;
    at_least("cleanup.intervalSecs", s.cleanup.interval_secs, 1)?;
    between("cleanup.batchSize", s.cleanup.batch_size.into(), 1, 10_000)?;
    Ok(())
}

impl Settings {
    /// `run` needs to know whose node this is; `migrate`, `status` and friends do not.
    pub fn require_account(&self) -> Result<(), ConfigError> {
        if self.chain.account.is_empty() {
            return Err(ConfigError::invalid(
                "chain.account",
                "required: the SS58 address of this node's sWorker account",
            ));
        }
        Ok(())
    }
}

fn url_with(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let ok = schemes
        .iter()
        .any(|s| value.len() > s.len() && value.to_ascii_lowercase().starts_with(s));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("expected a URL starting with {}, got `{value}`", schemes.join(" or ")),
        ))
    }
}

fn between(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if (lo..=hi).contains(&v) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("expected an integer from {lo} to {hi}, got {v}"),
        ))
    }
}

fn at_least(key: &str, v: u64, lo: u64) -> Result<(), ConfigError> {
    if v >= lo {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("expected an integer ≥ {lo}, got {v}"),
        ))
    }
}
