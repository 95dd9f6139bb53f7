//! The typed configuration tree and its built-in defaults.
//!
//! Field names serialize in the TypeScript manager's camelCase so the same names work in TOML, in the legacy JSON
//! and (case-insensitively, underscores optional) in `SMANAGER__…` environment variables.

use serde::{Deserialize, Serialize};

/// The names accepted inside a `scheduler.strategy` table.
pub const STRATEGY_WEIGHT_KEYS: [&str; 3] = ["existedFilesWeight", "dbFilesWeight", "newFilesWeight"];

/// Everything smanager can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct Settings {
    /// `chain.*`: the Crust node and indexing.
    pub chain: ChainSettings,
    /// `sworker.*`.
    pub sworker: SworkerSettings,
    /// `ipfs.*`.
    pub ipfs: IpfsSettings,
    /// `node.*`.
    pub node: NodeSettings,
    /// `telemetry.*`.
    pub telemetry: TelemetrySettings,
    /// Kept for the TypeScript config: where it put its SQLite file. We keep state in PostgreSQL and only write
    /// scratch files here.
    pub data_dir: String,
    /// `scheduler.*`: the Picker's rules and gates.
    pub scheduler: SchedulerSettings,
    /// `sealCoordinator.*`; absent means no coordinator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seal_coordinator: Option<SealCoordinatorSettings>,
    /// `database.*`.
    pub database: DatabaseSettings,
    /// `admin.*`: the admin HTTP server.
    pub admin: AdminSettings,
    /// `puller.*`.
    pub puller: PullerSettings,
    /// `sealer.*`.
    pub sealer: SealerSettings,
    /// `retry.*`: backoff and giving up.
    pub retry: RetrySettings,
    /// `cleanup.*`.
    pub cleanup: CleanupSettings,
    /// `log.*`.
    pub log: LogSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            chain: ChainSettings::default(),
            sworker: SworkerSettings::default(),
            ipfs: IpfsSettings::default(),
            node: NodeSettings::default(),
            telemetry: TelemetrySettings::default(),
            data_dir: "data".into(),
            scheduler: SchedulerSettings::default(),
            seal_coordinator: None,
            database: DatabaseSettings::default(),
            admin: AdminSettings::default(),
            puller: PullerSettings::default(),
            sealer: SealerSettings::default(),
            retry: RetrySettings::default(),
            cleanup: CleanupSettings::default(),
            log: LogSettings::default(),
        }
    }
}

/// The Crust node and this node's account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct ChainSettings {
    /// SS58 address of this storage member (the sWorker's account).
    pub account: String,
    /// WebSocket endpoint of the Crust node (crust-node serves ws on 19944).
    pub end_point: String,
    /// Exit (for the restart policy) when no new finalized block arrives for this long.
    pub finalized_timeout_secs: u64,
    /// How long a node that reports itself syncing is waited for before the process exits for a restart (TypeScript
    /// waits about 4 days). Syncing and catching up never count towards `finalizedTimeoutSecs`.
    pub sync_wait_secs: u64,
    /// How often the indexer asks for a new finalized head when it is caught up.
    pub poll_interval_ms: u64,
    /// First reconnect delay; doubles up to `reconnectMaxSecs`.
    pub reconnect_min_secs: u64,
    /// Longest reconnect delay.
    pub reconnect_max_secs: u64,
    /// Pause between two full scans of `Market.FilesV2`.
    pub scan_cooldown_secs: u64,
    /// Keys per `state_getKeysPaged` call (the node caps it at 1000).
    pub scan_page_size: u32,
    /// Keys per `state_queryStorageAt` call.
    pub scan_batch_size: u32,
    /// Value batches in flight at once.
    pub scan_parallelism: u32,
    /// Rows of consecutive pages gathered into one write, sorted by CID. The map's keys are hashes, so one page's
    /// CIDs land all over `files`' indexes; a large sorted batch makes consecutive index inserts touch pages the
    /// last ones just did (on a million files, sorted 20,000-row writes cost PostgreSQL about half the CPU of
    /// 1,000-row pages). Memory is bounded by this, not by the number of files.
    pub scan_write_rows: u32,
    /// How often group membership and the live node count are refreshed.
    pub group_refresh_secs: u64,
}

impl Default for ChainSettings {
    fn default() -> Self {
        ChainSettings {
            account: String::new(),
            end_point: "ws://127.0.0.1:19944".into(),
            finalized_timeout_secs: 30 * 60,
            sync_wait_secs: 4 * 24 * 3600,
            poll_interval_ms: 1000,
            reconnect_min_secs: 1,
            reconnect_max_secs: 60,
            scan_cooldown_secs: 6 * 3600,
            scan_page_size: 1000,
            scan_batch_size: 150,
            scan_parallelism: 4,
            scan_write_rows: 20_000,
            group_refresh_secs: 600,
        }
    }
}

/// The sWorker HTTP API (without `/api/v0`; the client appends it, as the TypeScript manager did).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SworkerSettings {
    /// sWorker API base URL (crust-node: `http://127.0.0.1:12222`).
    pub end_point: String,
    /// Per-request timeout.
    pub timeout_secs: u64,
}

impl Default for SworkerSettings {
    fn default() -> Self {
        SworkerSettings {
            end_point: "http://127.0.0.1:12222".into(),
            timeout_secs: 30,
        }
    }
}

/// Crust's IPFS (Kubo RPC API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct IpfsSettings {
    /// Kubo RPC base URL of Crust's IPFS (crust-node: `http://127.0.0.1:5001`).
    pub end_point: String,
    /// Timeout of short calls (`version`, `pin/ls`, `repo/stat`); `pin/add` has its own, see `puller`.
    pub timeout_secs: u64,
    /// `repo/gc` interval; 0 turns it off.
    pub gc_interval_secs: u64,
}

impl Default for IpfsSettings {
    fn default() -> Self {
        IpfsSettings {
            end_point: "http://127.0.0.1:5001".into(),
            timeout_secs: 30,
            gc_interval_secs: 3600,
        }
    }
}

/// Role of this node, from the TypeScript config (informational: the group decides what is pulled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NodeRole {
    /// Part of a group: the group slot decides what this node pulls.
    #[default]
    Member,
    /// A stand-alone node.
    Isolation,
}

/// `node.*` from the TypeScript config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NodeSettings {
    /// `member` or `isolation`.
    pub role: NodeRole,
}

/// Where the hourly telemetry report goes; empty skips it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// URL the report is POSTed to.
    pub end_point: String,
    /// Seconds between two reports.
    pub interval_secs: u64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            end_point: String::new(),
            interval_secs: 3600,
        }
    }
}

/// Pick strategy: a preset name or explicit weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Strategy {
    /// `"default"`, `"srdFirst"` or `"newFileFirst"`.
    Preset(StrategyPreset),
    /// Explicit weights per source.
    Weights(StrategyWeights),
}

impl Default for Strategy {
    fn default() -> Self {
        Strategy::Preset(StrategyPreset::Default)
    }
}

/// The TypeScript manager's named strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StrategyPreset {
    /// db/new 50/50.
    #[serde(rename = "default")]
    Default,
    /// db/new 80/10: favours files already on chain.
    #[serde(rename = "srdFirst")]
    SrdFirst,
    /// db/new 20/80: favours new orders.
    #[serde(rename = "newFileFirst")]
    NewFileFirst,
}

/// Relative weights of the sources of work; absent keys default as in TypeScript (`newFilesWeight` 100, others 0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct StrategyWeights {
    /// Accepted for TypeScript configs and ignored, as TypeScript ignores it.
    pub existed_files_weight: u32,
    /// Files found by the FilesV2 scanner.
    pub db_files_weight: u32,
    /// Files from fresh `FileSuccess` events.
    pub new_files_weight: u32,
}

impl Default for StrategyWeights {
    fn default() -> Self {
        StrategyWeights {
            existed_files_weight: 0,
            db_files_weight: 0,
            new_files_weight: 100,
        }
    }
}

impl Strategy {
    /// The weights to draw from, presets expanded as the TypeScript manager defines them (db/new).
    pub fn weights(&self) -> StrategyWeights {
        match self {
            Strategy::Preset(StrategyPreset::Default) => StrategyWeights {
                existed_files_weight: 0,
                db_files_weight: 50,
                new_files_weight: 50,
            },
            Strategy::Preset(StrategyPreset::SrdFirst) => StrategyWeights {
                existed_files_weight: 0,
                db_files_weight: 80,
                new_files_weight: 10,
            },
            Strategy::Preset(StrategyPreset::NewFileFirst) => StrategyWeights {
                existed_files_weight: 0,
                db_files_weight: 20,
                new_files_weight: 80,
            },
            Strategy::Weights(w) => *w,
        }
    }
}

/// How candidates are ordered once they pass the filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum RankBy {
    /// Highest tips first, as the TypeScript manager does.
    #[default]
    Tips,
    /// Highest tips per byte first.
    RewardPerByte,
}

/// The decision engine's rules (TypeScript names first, then ours).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SchedulerSettings {
    /// How picks are split between new orders and files found by the scanner.
    pub strategy: Strategy,
    /// Percent of the sWorker's space that must be SRD before any file is pulled (0–100).
    pub min_srd_ratio: u32,
    /// Files in flight (pinning + sealing) at most, split between the small and large lanes.
    pub max_pending_tasks: u32,
    /// MB; 0 turns the bound off.
    pub min_file_size: u64,
    /// MB; 0 turns the bound off.
    pub max_file_size: u64,
    /// Scanned files with fewer replicas are left to others (TypeScript applies it whenever it draws scanned files).
    pub min_replicas: u32,
    /// Files with this many replicas or more are skipped; 0 turns the bound off.
    pub max_replicas: u32,
    /// Files of at least this many MiB use the large lane.
    pub large_file_size_mb: u64,
    /// Percent of `maxPendingTasks` reserved for the large lane.
    pub large_lane_percent: u32,
    /// Orders that expire sooner than this are not worth pulling.
    pub min_lifetime_days: u32,
    /// A file without any replica this long after it was indexed is invalid.
    pub no_replica_days: u32,
    /// Probability filter for new orders: a group takes one with probability targetReplicas × members / live nodes
    /// (300 is the TypeScript manager's constant); 0 turns the filter off.
    pub target_replicas: u32,
    /// The same filter's base for files found by the scanner (TypeScript's 160); 0 turns it off for them.
    pub scan_target_replicas: u32,
    /// The system disk must keep this much free (GiB).
    pub min_sys_free_gib: u64,
    /// sWorker free space must exceed this multiple of (file + in-flight reservations).
    pub space_factor: f64,
    /// How candidates that pass every filter are ordered.
    pub rank_by: RankBy,
    /// Before pulling, the DAG's real size is read from IPFS for at most this long (0 turns the check off); a size
    /// that cannot be read in time does not block the pull.
    pub size_check_timeout_secs: u64,
    /// A file whose real size exceeds its ordered size by more than this percent is skipped: the chain would close
    /// it as illegal and the space would be wasted.
    pub size_margin_percent: u32,
    /// Candidates read per pick round.
    pub batch_size: u32,
    /// How often the picker re-reads sWorker workload and retries waiting files even without a wake-up.
    pub tick_secs: u64,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            strategy: Strategy::default(),
            min_srd_ratio: 70,
            max_pending_tasks: 32,
            min_file_size: 0,
            max_file_size: 0,
            min_replicas: 40,
            max_replicas: 100,
            large_file_size_mb: 5 * 1024,
            large_lane_percent: 40,
            min_lifetime_days: 120,
            no_replica_days: 10,
            target_replicas: 300,
            scan_target_replicas: 160,
            min_sys_free_gib: 50,
            space_factor: 2.2,
            rank_by: RankBy::Tips,
            size_check_timeout_secs: 3,
            size_margin_percent: 10,
            batch_size: 100,
            tick_secs: 30,
        }
    }
}

/// The optional seal coordinator shared by several nodes (TypeScript `sealCoordinator`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SealCoordinatorSettings {
    /// Coordinator base URL.
    pub end_point: String,
    /// This node's id, sent in a header with every call.
    #[serde(rename = "nodeUUID")]
    pub node_uuid: String,
    /// Token sent as `Authorization: <authScheme> <authToken>` (redacted by `config show`).
    pub auth_token: String,
    /// The word before the token: `Bearer` (standard), or `Bear:` for a coordinator written for TypeScript 1.0.3,
    /// which sends `Authorization: Bear: <token>`.
    pub auth_scheme: String,
}

impl Default for SealCoordinatorSettings {
    fn default() -> Self {
        SealCoordinatorSettings {
            end_point: String::new(),
            node_uuid: String::new(),
            auth_token: String::new(),
            auth_scheme: "Bearer".into(),
        }
    }
}

/// PostgreSQL, the single source of truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// PostgreSQL connection URL (its password is redacted by `config show`).
    pub url: String,
    /// Connections in the pool.
    pub pool_size: u32,
    /// How long to wait for a connection before the call fails.
    pub connect_timeout_secs: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: "postgres://smanager@127.0.0.1:5432/smanager".into(),
            pool_size: 8,
            connect_timeout_secs: 10,
        }
    }
}

/// The admin HTTP surface (health, metrics, JSON API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct AdminSettings {
    /// `host:port`; loopback by default because the API can retry and pause work.
    pub bind: String,
    /// Bearer token for mutating routes; empty refuses every mutating request.
    pub auth_token: String,
    /// `/readyz` fails when no new finalized block was seen for this long.
    pub chain_stale_secs: u64,
    /// `/readyz` fails while the indexer is more than this many blocks behind the finalized head.
    pub max_lag_blocks: u64,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            bind: "127.0.0.1:8686".into(),
            auth_token: String::new(),
            chain_stale_secs: 120,
            max_lag_blocks: 600,
        }
    }
}

/// `pin/add` timing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PullerSettings {
    /// Absolute cap = `baseTimeoutSecs` + size / `minBytesPerSec`.
    pub base_timeout_secs: u64,
    /// The slowest transfer rate a pin is given time for.
    pub min_bytes_per_sec: u64,
    /// Abort when streamed progress has not grown for this long.
    pub stall_timeout_secs: u64,
    /// A pin's lease; renewed while it runs, re-adopted after a restart.
    pub lease_secs: u64,
}

impl Default for PullerSettings {
    fn default() -> Self {
        PullerSettings {
            base_timeout_secs: 3600,
            min_bytes_per_sec: 200 * 1024,
            stall_timeout_secs: 600,
            lease_secs: 120,
        }
    }
}

/// Following seals in the sWorker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct SealerSettings {
    /// Seconds between two reads of the sWorker's pending map.
    pub check_interval_secs: u64,
    /// A pending seal whose `sealed_size` did not grow over this many checks is cancelled.
    pub stall_checks: u32,
    /// Pending seals that no pin explains are ended after this long.
    pub orphan_grace_secs: u64,
    /// A file whose `pin/add` returned but that the sWorker reports neither valid nor pending this long afterwards
    /// failed its attempt and is retried (TypeScript's 10 minutes).
    pub confirm_timeout_secs: u64,
}

impl Default for SealerSettings {
    fn default() -> Self {
        SealerSettings {
            check_interval_secs: 120,
            stall_checks: 5,
            orphan_grace_secs: 1800,
            confirm_timeout_secs: 600,
        }
    }
}

/// Backoff for files that failed or had to wait.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RetrySettings {
    /// First retry delay; doubles with every attempt.
    pub base_delay_secs: u64,
    /// Longest retry delay.
    pub max_delay_secs: u64,
    /// Attempts before a file becomes `failed`.
    pub max_attempts: u32,
    /// Files still unresolved this long after indexing become `failed`.
    pub give_up_days: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            base_delay_secs: 60,
            max_delay_secs: 6 * 3600,
            max_attempts: 8,
            give_up_days: 30,
        }
    }
}

/// Deleting files whose orders closed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CleanupSettings {
    /// Seconds between two cleanup rounds.
    pub interval_secs: u64,
    /// Cleanup records handled per round.
    pub batch_size: u32,
}

impl Default for CleanupSettings {
    fn default() -> Self {
        CleanupSettings {
            interval_secs: 60,
            batch_size: 50,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text on a terminal, JSON otherwise.
    #[default]
    Auto,
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `log.*`; levels per module come from `RUST_LOG`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LogSettings {
    /// `auto`, `text` or `json`.
    pub format: LogFormat,
}
