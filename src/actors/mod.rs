//! The pipeline: five long-lived actors under `actix::Supervisor`.
//!
//! ```text
//!  chain ──► Indexer ──(FilesIndexed)──► Picker ──(Pull)──► Puller ──(Pinned)──► Sealer
//!               │                         ▲  ▲                ▲                   │
//!               └──(FilesClosed)──► Cleanup  └─(CapacityFreed)─┴──────(Abort)──────┘
//! ```
//!
//! PostgreSQL is the single source of truth: every message is a wake-up or a hint, never the only copy of a fact.
//! Each actor (re)loads what it needs in `started`, which the supervisor calls again after a restart. A recoverable
//! failure (the database went away mid-step) stops the actor's context and the supervisor restarts it; a panic is
//! fatal to the process, and start-up recovery makes that safe.

pub mod cleanup;
pub mod indexer;
pub mod picker;
pub mod puller;
pub mod scanner;
pub mod sealer;

use std::cell::OnceCell;
use std::rc::Rc;

use actix::prelude::*;

use crate::chain::ChainSource;
use crate::config::Settings;
use crate::db::Db;
use crate::ipfs::Ipfs;
use crate::sworker::Sworker;

pub use cleanup::Cleanup;
pub use indexer::Indexer;
pub use picker::Picker;
pub use puller::Puller;
pub use sealer::Sealer;

/// What every actor is built from.
#[derive(Clone)]
pub struct Deps {
    /// PostgreSQL, the only state that survives a restart.
    pub db: Db,
    /// The validated configuration.
    pub settings: Rc<Settings>,
    /// The Crust chain (subxt client, or a scripted chain in tests).
    pub chain: Rc<dyn ChainSource>,
    /// Crust's IPFS (Kubo RPC), which seals as it pins.
    pub ipfs: Rc<dyn Ipfs>,
    /// The sWorker API.
    pub sworker: Rc<dyn Sworker>,
    /// Names this process in pin leases: `<account>/<random>`.
    pub holder: String,
}

/// The actors' addresses, shared once all are started (they reference each other in a cycle).
#[derive(Clone)]
pub struct Peers {
    /// Follows finalized blocks.
    pub indexer: Addr<Indexer>,
    /// Decides what to pull.
    pub picker: Addr<Picker>,
    /// Runs `pin/add`.
    pub puller: Addr<Puller>,
    /// Follows sealing.
    pub sealer: Addr<Sealer>,
    /// Deletes closed files.
    pub cleanup: Addr<Cleanup>,
}

/// Filled right after start; actors read it when they need to talk to each other.
pub type SharedPeers = Rc<OnceCell<Peers>>;

/// Stops an actor's context so its supervisor restarts it from persisted state. Operators (and the supervision
/// tests) use it to recover an actor without restarting the process.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct RestartActor;

/// Graceful shutdown: stop admitting work and persist in-flight state. Answers when done.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Shutdown;

/// Starts the pipeline in the current actix system.
pub fn start(deps: Deps) -> Peers {
    let shared: SharedPeers = Rc::new(OnceCell::new());
    let d = deps.clone();
    let s = shared.clone();
    let indexer = Supervisor::start(move |_| Indexer::new(d, s));
    let d = deps.clone();
    let s = shared.clone();
    let picker = Supervisor::start(move |_| Picker::new(d, s));
    let d = deps.clone();
    let s = shared.clone();
    let puller = Supervisor::start(move |_| Puller::new(d, s));
    let d = deps.clone();
    let s = shared.clone();
    let sealer = Supervisor::start(move |_| Sealer::new(d, s));
    let d = deps;
    let s = shared.clone();
    let cleanup = Supervisor::start(move |_| Cleanup::new(d, s));
    let peers = Peers {
        indexer,
        picker,
        puller,
        sealer,
        cleanup,
    };
    // Actors run their `started` only after this function returns to the arbiter, so the cell is always set first.
    let _ = shared.set(peers.clone());
    peers
}

impl Peers {
    /// Stops admission and persists in-flight state, in pipeline order, then returns.
    pub async fn shutdown(&self) {
        let _ = self.picker.send(Shutdown).await;
        let _ = self.indexer.send(Shutdown).await;
        let _ = self.cleanup.send(Shutdown).await;
        let _ = self.sealer.send(Shutdown).await;
        let _ = self.puller.send(Shutdown).await;
    }
}
