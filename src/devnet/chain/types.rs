//! SCALE layouts of the Crust storage values and the extrinsic/event framing the devnet chain writes.

use std::collections::{BTreeMap, BTreeSet};

use parity_scale_codec::{Compact, Encode};

/// A 32-byte account id.
pub type AccountId = [u8; 32];

/// `Replica<AccountId>` (spec 17+).
#[derive(Debug, Clone, Encode, PartialEq, Eq)]
pub struct Replica {
    pub who: AccountId,
    pub valid_at: u32,
    pub anchor: Vec<u8>,
    pub is_reported: bool,
    pub created_at: Option<u32>,
}

/// `FileInfoV2<AccountId, Balance>` (spec 17–25); replicas are keyed by group owner.
#[derive(Debug, Clone, Encode, PartialEq, Eq)]
pub struct FileInfoV2 {
    pub file_size: u64,
    pub spower: u64,
    pub expired_at: u32,
    pub calculated_at: u32,
    #[codec(compact)]
    pub amount: u128,
    #[codec(compact)]
    pub prepaid: u128,
    pub reported_replica_count: u32,
    pub remaining_paid_count: u32,
    pub replicas: BTreeMap<AccountId, Replica>,
}

/// `Identity<AccountId>`.
#[derive(Debug, Clone, Encode, PartialEq, Eq)]
pub struct Identity {
    pub anchor: Vec<u8>,
    pub punishment_deadline: u64,
    pub group: Option<AccountId>,
}

/// `Group<AccountId>`.
#[derive(Debug, Clone, Encode, PartialEq, Eq, Default)]
pub struct Group {
    pub members: BTreeSet<AccountId>,
    pub allowlist: BTreeSet<AccountId>,
}

/// `WorkReport`.
#[derive(Debug, Clone, Encode, PartialEq, Eq)]
pub struct WorkReport {
    pub report_slot: u64,
    pub spower: u64,
    pub free: u64,
    pub reported_files_size: u64,
    pub reported_srd_root: Vec<u8>,
    pub reported_files_root: Vec<u8>,
}

/// `AccountInfo` with consumers and providers and the four-balance `AccountData`: 76 bytes.
#[derive(Debug, Clone, Encode, PartialEq, Eq, Default)]
pub struct AccountInfo {
    pub nonce: u32,
    pub consumers: u32,
    pub providers: u32,
    pub free: u128,
    pub reserved: u128,
    pub misc_frozen: u128,
    pub fee_frozen: u128,
}

/// `DispatchInfo` of spec 25: weight u64, class, pays_fee.
pub fn dispatch_info(weight: u64, class: u8) -> Vec<u8> {
    let mut v = weight.encode();
    v.push(class);
    v.push(0);
    v
}

/// `frame_system::Phase`: when in the block an event was emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    ApplyExtrinsic(u32),
    Finalization,
    Initialization,
}

/// An event record: phase, `module ‖ variant ‖ args`, no topics.
pub fn event_record(phase: Phase, module: u8, variant: u8, args: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(args.len() + 8);
    match phase {
        Phase::ApplyExtrinsic(i) => {
            v.push(0);
            v.extend(i.encode());
        }
        Phase::Finalization => v.push(1),
        Phase::Initialization => v.push(2),
    }
    v.push(module);
    v.push(variant);
    v.extend_from_slice(args);
    v.push(0);
    v
}

/// `DispatchError::Module { index, error }` of spec 25 (a `u8` error index).
pub fn module_error(pallet: u8, error: u8) -> Vec<u8> {
    vec![3, pallet, error]
}

/// A signed v4 extrinsic with a raw 32-byte address, an Sr25519-tagged signature, immortal era, nonce and tip; the
/// whole thing with its own length prefix, as `chain_getBlock` returns it. The signature is well-formed but not
/// verifiable: the devnet does not check signatures.
pub fn signed_extrinsic(signer: &AccountId, nonce: u32, tip: u128, call: &[u8]) -> Vec<u8> {
    let mut body = vec![0x84];
    body.extend_from_slice(signer);
    body.push(1);
    let mut sig = [0u8; 64];
    let h = sp_crypto_hashing::blake2_512(&[signer.as_slice(), call].concat());
    sig.copy_from_slice(&h);
    body.extend_from_slice(&sig);
    body.push(0); // immortal era
    Compact(nonce).encode_to(&mut body);
    Compact(tip).encode_to(&mut body);
    body.extend_from_slice(call);
    body.encode()
}

/// An unsigned (inherent) v4 extrinsic with its length prefix.
pub fn unsigned_extrinsic(call: &[u8]) -> Vec<u8> {
    let mut body = vec![0x04];
    body.extend_from_slice(call);
    body.encode()
}

/// A block header, SCALE-encoded (the block hash is its blake2-256).
#[derive(Debug, Clone, Encode)]
pub struct Header {
    pub parent_hash: [u8; 32],
    #[codec(compact)]
    pub number: u32,
    pub state_root: [u8; 32],
    pub extrinsics_root: [u8; 32],
    pub digest: Vec<Vec<u8>>,
}

impl Header {
    /// The block hash: blake2-256 of the SCALE-encoded header, as Substrate computes it.
    pub fn hash(&self) -> [u8; 32] {
        sp_crypto_hashing::blake2_256(&self.encode())
    }

    /// The JSON-RPC shape.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "parentHash": format!("0x{}", hex::encode(self.parent_hash)),
            "number": format!("0x{:x}", self.number),
            "stateRoot": format!("0x{}", hex::encode(self.state_root)),
            "extrinsicsRoot": format!("0x{}", hex::encode(self.extrinsics_root)),
            "digest": {"logs": []},
        })
    }
}
