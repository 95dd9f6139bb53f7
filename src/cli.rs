//! Command line: `smanager run | devnet | migrate | config | status | files | retry | explain | plan`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Storage manager for Crust Network storage nodes.
#[derive(Debug, Parser)]
#[command(name = "smanager", version, about)]
pub struct Cli {
    /// Config file (TOML, or the TypeScript manager's JSON); also read from SMANAGER_CONFIG.
    #[arg(long, short = 'c', global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands; every one reads and validates the configuration first.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline against the configured chain, sWorker, IPFS and PostgreSQL.
    Run,
    /// The whole stack on loopback: simulated Crust chain, sWorker and IPFS, a PostgreSQL, and smanager.
    Devnet(crate::devnet::run::DevnetArgs),
    /// Benchmark: FilesV2 scan orders/s, catch-up blocks/s, peak RSS and pick latency, as one JSON line.
    Bench(crate::bench::BenchArgs),
    /// The benchmark's devnet chain process (internal).
    #[command(hide = true)]
    DevnetChain(crate::bench::DevnetChainArgs),
    /// Apply database migrations (they also run at start-up).
    Migrate {
        /// Revert every migration instead (drops all smanager tables).
        #[arg(long)]
        revert_all: bool,
    },
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Counts by status, cursors and indexer lag.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// List or show files.
    #[command(subcommand)]
    Files(FilesCommand),
    /// Send failed or waiting files back to the queue, with attempts and give-up age reset.
    Retry(RetryArgs),
    /// Why a file is (or is not) stored: every rule with its numbers, its history, and what happens next.
    Explain {
        /// The file's CID, as ordered on chain.
        cid: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Dry run of the next Picker round: the files it would take, in order, and the others counted by rule.
    Plan(PlanArgs),
    /// Probe the admin server of a running smanager (for container healthchecks): exit 0 when it answers.
    Healthcheck {
        /// Ask `/readyz` (dependencies) instead of `/livez` (process alive).
        #[arg(long)]
        ready: bool,
    },
}

/// `smanager config …`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Show,
    /// Validate the configuration: exit 0 when valid, 2 otherwise.
    Check,
}

/// `smanager files …`.
#[derive(Debug, Subcommand)]
pub enum FilesCommand {
    /// Files, most recently changed first.
    List {
        /// Only files with this status (new, queued, pinning, sealed, pin_error, failed, …).
        #[arg(long)]
        status: Option<String>,
        /// Only files with this reason group, numbers written as `N` (as `status` and the status page show them).
        #[arg(long)]
        reason: Option<String>,
        /// At most this many files.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Skip this many files first (paging).
        #[arg(long, default_value_t = 0)]
        offset: i64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One file with its owners, pin history and cleanups.
    Show {
        /// The file's CID, as ordered on chain.
        cid: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Which files `smanager retry` sends back to the queue: one CID or every file with a status.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RetryArgs {
    /// One CID.
    pub cid: Option<String>,
    /// Every file with this status.
    #[arg(long)]
    pub status: Option<String>,
}

/// `smanager plan`: the next round under the current configuration, or a proposed one (`--config other.json`,
/// `--set scheduler.strategy=srdFirst`), without pulling anything.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// List at most this many files to take.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Override one key for this plan only (repeatable): `--set scheduler.strategy=srdFirst`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Seed of the strategy draws (random when absent; printed so a plan can be replayed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
