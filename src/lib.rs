//! smanager: the storage manager of a Crust Network storage node.
//!
//! Start reading at [`actors`]: the Indexer, Picker, Puller, Sealer and Cleanup actors are the pipeline; the policy
//! (which files this node stores) is the Decision Engine in [`decision`]. Everything
//! they know lives in PostgreSQL ([`db`]); external systems sit behind small traits ([`chain::ChainSource`],
//! [`ipfs::Ipfs`], [`sworker::Sworker`]) so devnet simulators and real peers drive the same code.

pub mod actors;
pub mod app;
pub mod bench;
pub mod chain;
pub mod cli;
pub mod commands;
pub mod config;
pub mod coordinator;
pub mod db;
pub mod decision;
pub mod devnet;
pub mod explain;
pub mod http;
pub mod ipfs;
pub mod logging;
pub mod metrics;
pub mod sworker;
pub mod telemetry;
