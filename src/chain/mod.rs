//! The chain as the pipeline needs it: finalized blocks turned into domain events.
//!
//! [`ChainSource`] is the seam between the Indexer actor and a real node: the subxt client implements it for Crust
//! (and any Substrate runtime), tests and devnet drive the same actor through it.

pub mod client;
pub mod keys;
pub mod ss58;

use futures_util::future::LocalBoxFuture;

/// A storage order as the indexer read it from a block: the call's arguments and its signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOrder {
    pub cid: String,
    /// `reported_file_size` of the order, in bytes.
    pub size: u64,
    pub tips: u128,
    /// SS58 address of the signer.
    pub owner: String,
}

/// Why an order stopped being live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// `Market.FileClosed`, or `CalculateSuccess` after which FilesV2 no longer holds the file.
    Closed,
    /// `Market.IllegalFileClosed`.
    Illegal,
}

impl CloseReason {
    /// The name stored with the file and shown to operators.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::Closed => "closed",
            CloseReason::Illegal => "illegal",
        }
    }
}

/// What a finalized block means for the file index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEvent {
    /// `Market.FileSuccess`, with size, tips and owner taken from the order's call.
    Ordered(FileOrder),
    /// The order ended: `FileClosed`, `IllegalFileClosed`, or a `CalculateSuccess` whose file is gone.
    Closed { cid: String, reason: CloseReason },
    /// Chain data that cannot be a file (a MerkleRoot that is not UTF-8 or not a CID): recorded, never dropped.
    Invalid { raw: String, reason: String },
}

/// One finalized block, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedBlock {
    pub number: u64,
    pub hash: String,
    pub timestamp_ms: Option<u64>,
    pub events: Vec<ChainEvent>,
}

/// Why the chain could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// Transport trouble: retried with backoff, never fatal.
    #[error("chain unavailable: {0}")]
    Unavailable(String),
    /// The block cannot be read: logged with its number and recorded, never skipped silently.
    #[error("block {number} cannot be decoded: {reason}")]
    Decode { number: u64, reason: String },
    /// Asked for a block beyond the finalized head.
    #[error("block {0} is not finalized yet")]
    NotFinalized(u64),
}

/// This node's group as the chain records it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GroupView {
    /// `Swork.Identities(account).group`; `None` when the account has no identity or no group.
    pub owner: Option<[u8; 32]>,
    /// `Swork.Groups(owner).members`, in key-byte order.
    pub members: Vec<[u8; 32]>,
    /// The account is itself a group owner (a configuration error: owners cannot store files).
    pub account_is_owner: bool,
}

/// A source of finalized blocks.
pub trait ChainSource {
    /// Number of the newest finalized block.
    fn finalized_head(&self) -> LocalBoxFuture<'_, Result<u64, ChainError>>;
    /// The finalized block `number`, decoded into domain events.
    fn block(&self, number: u64) -> LocalBoxFuture<'_, Result<IndexedBlock, ChainError>>;
    /// Up to `count` storage keys under `prefix` after `start`, at the finalized head (metadata-free paging).
    fn keys_paged(
        &self,
        prefix: Vec<u8>,
        count: u32,
        start: Option<Vec<u8>>,
    ) -> LocalBoxFuture<'_, Result<Vec<Vec<u8>>, ChainError>> {
        let _ = (prefix, count, start);
        Box::pin(async { Err(ChainError::Unavailable("this chain source cannot page storage".into())) })
    }
    /// The values of `keys` (in order) at the finalized head, in one call.
    fn values(&self, keys: Vec<Vec<u8>>) -> LocalBoxFuture<'_, Result<Vec<Option<Vec<u8>>>, ChainError>> {
        let _ = keys;
        Box::pin(async { Err(ChainError::Unavailable("this chain source cannot read storage".into())) })
    }
    /// Whether the node is still syncing (`system_health`).
    fn is_syncing(&self) -> LocalBoxFuture<'_, Result<bool, ChainError>> {
        Box::pin(async { Ok(false) })
    }
    /// The group of `account` at the finalized head.
    fn group(&self, account: [u8; 32]) -> LocalBoxFuture<'_, Result<GroupView, ChainError>> {
        let _ = account;
        Box::pin(async {
            Err(ChainError::Unavailable(
                "this chain source has no group information".into(),
            ))
        })
    }
}

/// Decodes `Swork.Identities` → the group owner (anchor `Vec<u8>`, deadline `u64`, `Option<AccountId>`).
pub fn decode_identity_group(bytes: &[u8]) -> Result<Option<[u8; 32]>, String> {
    use parity_scale_codec::Decode;
    let mut input = bytes;
    let _anchor = Vec::<u8>::decode(&mut input).map_err(|e| format!("Identity.anchor: {e}"))?;
    let _deadline = u64::decode(&mut input).map_err(|e| format!("Identity.punishment_deadline: {e}"))?;
    Option::<[u8; 32]>::decode(&mut input).map_err(|e| format!("Identity.group: {e}"))
}

/// Decodes `Swork.Groups` → its members (a `BTreeSet<AccountId>`, then the allowlist).
pub fn decode_group_members(bytes: &[u8]) -> Result<Vec<[u8; 32]>, String> {
    use parity_scale_codec::Decode;
    let mut input = bytes;
    let mut members = Vec::<[u8; 32]>::decode(&mut input).map_err(|e| format!("Group.members: {e}"))?;
    members.sort_unstable();
    Ok(members)
}

/// Crust's legacy (pre-V14) type definitions, one versioned file for every runtime spec.
pub const CRUST_TYPES_YAML: &str = include_str!("crust_types.yaml");

/// The type registry subxt needs to decode Crust's V12 metadata: Substrate's base types plus Crust's own.
pub fn legacy_types() -> Result<scale_info_legacy::ChainTypeRegistry, String> {
    let mut types = subxt::ext::frame_decode::legacy_types::polkadot::relay_chain();
    let crust = subxt::ext::frame_decode::legacy_types::from_bytes(CRUST_TYPES_YAML.as_bytes())
        .map_err(|e| format!("crust_types.yaml: {e}"))?;
    types.extend(crust);
    Ok(types)
}

/// What the FilesV2 scanner keeps of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedFile {
    pub cid: String,
    pub size: u64,
    pub expired_at: u32,
    pub amount: u128,
    pub replicas: u32,
}

/// Decodes the leading fields shared by `FileInfoV2` and the V1 `FileInfo` (file_size, spower, expired_at,
/// calculated_at, amount, prepaid, reported_replica_count). The rest (replicas) is not needed by the scanner.
pub fn decode_file_info(bytes: &[u8]) -> Result<(u64, u32, u128, u32), String> {
    use parity_scale_codec::{Compact, Decode};
    let mut i = bytes;
    let size = u64::decode(&mut i).map_err(|e| format!("file_size: {e}"))?;
    let _spower = u64::decode(&mut i).map_err(|e| format!("spower: {e}"))?;
    let expired_at = u32::decode(&mut i).map_err(|e| format!("expired_at: {e}"))?;
    let _calculated_at = u32::decode(&mut i).map_err(|e| format!("calculated_at: {e}"))?;
    let amount = Compact::<u128>::decode(&mut i).map_err(|e| format!("amount: {e}"))?.0;
    let _prepaid = Compact::<u128>::decode(&mut i).map_err(|e| format!("prepaid: {e}"))?.0;
    let replicas = u32::decode(&mut i).map_err(|e| format!("reported_replica_count: {e}"))?;
    Ok((size, expired_at, amount, replicas))
}

/// `report_slot`, the first field of a `WorkReport`.
pub fn decode_report_slot(bytes: &[u8]) -> Result<u64, String> {
    use parity_scale_codec::Decode;
    u64::decode(&mut &bytes[..]).map_err(|e| format!("WorkReport.report_slot: {e}"))
}

#[cfg(test)]
mod file_info_tests {
    use super::*;
    use parity_scale_codec::{Compact, Encode};

    #[test]
    fn decodes_file_info_v2_prefix() {
        let mut b = 1234u64.encode();
        b.extend(0u64.encode());
        b.extend(99u32.encode());
        b.extend(5u32.encode());
        b.extend(Compact(10u128.pow(20)).encode());
        b.extend(Compact(0u128).encode());
        b.extend(7u32.encode());
        b.extend(4u32.encode());
        b.push(0);
        assert_eq!(decode_file_info(&b), Ok((1234, 99, 10u128.pow(20), 7)));
        assert!(decode_file_info(&b[..10]).is_err());
    }
}
