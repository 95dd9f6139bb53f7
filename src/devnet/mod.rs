//! devnet: the whole stack on loopback — a simulated Crust chain, sWorker and Crust IPFS, a PostgreSQL, and
//! smanager against them. Tests use the same pieces as a library.

pub mod chain;
pub mod content;
pub mod coordinator;
pub mod ipfs;
pub mod postgres;
pub mod run;
pub mod sworker;

/// Content the devnet knows how to serve; the chain scenario asks it for the CIDs it orders.
pub trait ContentSource: Send + Sync {
    /// Creates deterministic content of `size` bytes (CIDv1 base32 if `v1`), returns its CID string.
    /// `available == false` means IPFS will never find it (pin/add stalls until timeout/cancel).
    fn create(&self, seed: u64, size: u64, v1: bool, available: bool) -> String;
}
