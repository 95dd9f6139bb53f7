//! Command line: `smanager run | devnet | migrate | config | status | files | retry`.

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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the pipeline against the configured chain, sWorker, IPFS and PostgreSQL.
    Run,
    /// The whole stack on loopback: simulated Crust chain, sWorker and IPFS, a PostgreSQL, and smanager.
    Devnet(crate::devnet::run::DevnetArgs),
    /// Indexing benchmark: FilesV2 scan orders/s, catch-up blocks/s and peak RSS, as one JSON line.
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
        #[arg(long)]
        json: bool,
    },
    /// List or show files.
    #[command(subcommand)]
    Files(FilesCommand),
    /// Send failed or waiting files back to the queue.
    Retry(RetryArgs),
    /// Probe the admin server of a running smanager (for container healthchecks): exit 0 when it answers.
    Healthcheck {
        /// Ask `/readyz` (dependencies) instead of `/livez` (process alive).
        #[arg(long)]
        ready: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the effective configuration, secrets redacted.
    Show,
    /// Validate the configuration: exit 0 when valid, 2 otherwise.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum FilesCommand {
    /// Files, most recently changed first.
    List {
        /// Only files with this status (new, queued, pinning, sealed, pin_error, failed, …).
        #[arg(long)]
        status: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, default_value_t = 0)]
        offset: i64,
        #[arg(long)]
        json: bool,
    },
    /// One file with its owners, pin history and cleanups.
    Show {
        cid: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RetryArgs {
    /// One CID.
    pub cid: Option<String>,
    /// Every file with this status.
    #[arg(long)]
    pub status: Option<String>,
}
