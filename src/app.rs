//! `smanager run`: migrate, connect the peers, start the actors, and shut down cleanly on SIGTERM/SIGINT.

use std::rc::Rc;
use std::time::Duration;

use anyhow::Context as _;

use crate::actors::{self, Deps, Peers};
use crate::chain::ChainSource;
use crate::config::Settings;
use crate::db::Db;
use crate::ipfs::KuboClient;
use crate::sworker::SworkerClient;

/// How long shutdown may take before the process exits anyway (Docker sends SIGKILL after its grace period).
pub const SHUTDOWN_BUDGET: Duration = Duration::from_secs(8);

/// A lease holder name unique to this process.
pub fn holder_name(account: &str) -> String {
    let short: String = account.chars().take(10).collect();
    format!("{short}/{:08x}", rand::random::<u32>())
}

/// Builds the actors' dependencies from configuration and starts the pipeline in the current actix system.
pub fn start_pipeline(settings: Rc<Settings>, db: Db, chain: Rc<dyn ChainSource>) -> Peers {
    let ipfs = Rc::new(KuboClient::new(
        &settings.ipfs.end_point,
        Duration::from_secs(settings.ipfs.timeout_secs),
    ));
    let sworker = Rc::new(SworkerClient::new(
        &settings.sworker.end_point,
        Duration::from_secs(settings.sworker.timeout_secs),
    ));
    let holder = holder_name(&settings.chain.account);
    actors::start(Deps {
        db,
        settings,
        chain,
        ipfs,
        sworker,
        holder,
    })
}

/// Waits for SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => log::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => log::info!("SIGINT received"),
                }
            }
            Err(e) => {
                log::warn!("cannot watch SIGTERM ({e}); only SIGINT stops the process");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Stops admission and persists in-flight state within [`SHUTDOWN_BUDGET`].
pub async fn shutdown(peers: &Peers) {
    if actix_rt::time::timeout(SHUTDOWN_BUDGET, peers.shutdown())
        .await
        .is_err()
    {
        log::warn!("shutdown did not finish in {SHUTDOWN_BUDGET:?}; leases will expire instead");
    }
}

/// The `run` command.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    let db = Db::connect(&settings.database).context("connecting to PostgreSQL")?;
    let applied = db.migrate().context("applying migrations")?;
    if !applied.is_empty() {
        log::info!("applied migrations: {}", applied.join(", "));
    }
    let settings = Rc::new(settings);
    let system = actix_rt::System::new();
    system.block_on(async move {
        let chain = crate::chain::client::connect(&settings.chain);
        let peers = start_pipeline(settings.clone(), db.clone(), chain);
        let admin = crate::http::start(&settings, db, Some(peers.clone()))
            .with_context(|| format!("binding admin.bind {}", settings.admin.bind))?;
        log::info!(
            "smanager {} running for {}",
            env!("CARGO_PKG_VERSION"),
            settings.chain.account
        );
        shutdown_signal().await;
        shutdown(&peers).await;
        admin.handle.stop(true).await;
        log::info!("stopped");
        Ok::<(), anyhow::Error>(())
    })?;
    Ok(())
}
