//! The chain as the pipeline needs it: finalized blocks turned into domain events.
//!
//! [`ChainSource`] is the seam between the Indexer actor and a real node: the subxt client implements it for Crust
//! (and any Substrate runtime), tests and devnet drive the same actor through it.

pub mod client;
pub mod keys;
pub mod layout;
pub mod raw;
pub mod ss58;
pub mod versions;

use futures_util::future::LocalBoxFuture;
use futures_util::stream::LocalBoxStream;

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
    /// `RenewFileSuccess` or `AddPrepaidSuccess`: the file's chain facts (size, expiry, amount, replicas) as its
    /// storage entry holds them at that block, so a renewed file is not judged by its old expiry.
    Refreshed(ScannedFile),
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

/// The spec version of Crust mainnet's live runtime.
pub const LIVE_SPEC: u32 = 25;

/// The first spec with `Market.FilesV2`; before it, files live only in the V1 `Market.Files` map.
pub const FILES_V2_SPEC: u32 = 17;

/// A source of finalized blocks.
pub trait ChainSource {
    /// Number of the newest finalized block.
    fn finalized_head(&self) -> LocalBoxFuture<'_, Result<u64, ChainError>>;
    /// Finalized head numbers as the node announces them (`chain_subscribeFinalizedHeads`, which every Crust node
    /// serves), so the indexer wakes at once instead of at its next poll. An error (the default) means the source
    /// cannot subscribe: the indexer polls. The stream ends when the subscription drops.
    fn subscribe_finalized(&self) -> LocalBoxFuture<'_, Result<LocalBoxStream<'static, u64>, ChainError>> {
        Box::pin(async { Err(ChainError::Unavailable("no finalized-head subscription".into())) })
    }
    /// The finalized block `number`, decoded into domain events.
    fn block(&self, number: u64) -> LocalBoxFuture<'_, Result<IndexedBlock, ChainError>>;
    /// Learns which runtime version each block from `from` to `to` runs, before a catch-up reads them: the ends are
    /// asked, then the middle of every span whose ends differ, until every upgrade is pinned to its block, so the
    /// blocks themselves are decoded without asking the node for their version. An optimisation only: sources
    /// without it (the default) do nothing.
    fn learn_runtime_versions(&self, from: u64, to: u64) -> LocalBoxFuture<'_, Result<(), ChainError>> {
        let _ = (from, to);
        Box::pin(async { Ok(()) })
    }
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
    /// The spec version of the runtime at the finalized head: the V1 `Market.Files` layout depends on it.
    /// Sources that cannot tell report the live runtime's spec (25).
    fn spec_version(&self) -> LocalBoxFuture<'_, Result<u32, ChainError>> {
        Box::pin(async { Ok(LIVE_SPEC) })
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

/// The `FileInfo` layouts Crust has stored, measured on its real runtimes: the V1 `Market.Files` value changed at
/// spec 2, and `Market.FilesV2` (spec 17+) made the amounts compact. Reading a value with the wrong layout silently
/// yields nonsense (expiry from an amount's low bits), so every reader names the layout of the runtime it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileInfoLayout {
    /// Spec 1, `Market.Files`: `(FileInfo, UsedInfo)` with no `spower` and plain `u128` amounts.
    Genesis,
    /// Specs 2 to 17, `Market.Files`: `spower` after `file_size`, amounts still plain `u128`.
    V1,
    /// `Market.FilesV2` (spec 17+): compact amounts.
    V2,
}

impl FileInfoLayout {
    /// The layout of a map's values: `v1_map` is true for `Market.Files`, `spec` the runtime's spec version.
    pub fn of(v1_map: bool, spec: u32) -> FileInfoLayout {
        match (v1_map, spec) {
            (false, _) => FileInfoLayout::V2,
            (true, 0..=1) => FileInfoLayout::Genesis,
            (true, _) => FileInfoLayout::V1,
        }
    }
}

/// Decodes `FileInfoV2`'s leading fields: (file_size, expired_at, amount, reported_replica_count).
pub fn decode_file_info(bytes: &[u8]) -> Result<(u64, u32, u128, u32), String> {
    decode_file_info_as(bytes, FileInfoLayout::V2)
}

/// Decodes the leading fields of a `Market.Files`/`Market.FilesV2` value in the given layout: (file_size,
/// expired_at, amount, reported_replica_count). The replicas that follow are not needed by the scanner.
pub fn decode_file_info_as(bytes: &[u8], layout: FileInfoLayout) -> Result<(u64, u32, u128, u32), String> {
    use parity_scale_codec::{Compact, Decode};
    let mut i = bytes;
    let size = u64::decode(&mut i).map_err(|e| format!("file_size: {e}"))?;
    if layout != FileInfoLayout::Genesis {
        let _spower = u64::decode(&mut i).map_err(|e| format!("spower: {e}"))?;
    }
    let expired_at = u32::decode(&mut i).map_err(|e| format!("expired_at: {e}"))?;
    let _calculated_at = u32::decode(&mut i).map_err(|e| format!("calculated_at: {e}"))?;
    let amount_of = |i: &mut &[u8], what: &str| -> Result<u128, String> {
        if layout == FileInfoLayout::V2 {
            Compact::<u128>::decode(i).map(|c| c.0)
        } else {
            u128::decode(i)
        }
        .map_err(|e| format!("{what}: {e}"))
    };
    let amount = amount_of(&mut i, "amount")?;
    let _prepaid = amount_of(&mut i, "prepaid")?;
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

    #[test]
    fn decodes_v1_layouts_by_spec() {
        // Spec 1: no spower, plain u128 amounts; the tuple's UsedInfo follows and is ignored.
        let mut g = 1234u64.encode();
        g.extend(99u32.encode());
        g.extend(5u32.encode());
        g.extend(10u128.pow(20).encode());
        g.extend(3u128.encode());
        g.extend(7u32.encode());
        g.push(0);
        assert_eq!(FileInfoLayout::of(true, 1), FileInfoLayout::Genesis);
        assert_eq!(
            decode_file_info_as(&g, FileInfoLayout::Genesis),
            Ok((1234, 99, 10u128.pow(20), 7))
        );
        // Read as V2 (the old bug) the same bytes give a different, wrong answer.
        assert_ne!(decode_file_info(&g), Ok((1234, 99, 10u128.pow(20), 7)));
        // Spec 2..17: spower appears, amounts still plain.
        let mut v1 = 1234u64.encode();
        v1.extend(2468u64.encode());
        v1.extend(99u32.encode());
        v1.extend(5u32.encode());
        v1.extend(10u128.pow(20).encode());
        v1.extend(0u128.encode());
        v1.extend(7u32.encode());
        v1.push(0);
        assert_eq!(FileInfoLayout::of(true, 16), FileInfoLayout::V1);
        assert_eq!(
            decode_file_info_as(&v1, FileInfoLayout::V1),
            Ok((1234, 99, 10u128.pow(20), 7))
        );
        assert_eq!(FileInfoLayout::of(false, 17), FileInfoLayout::V2);
        assert!(decode_file_info_as(&v1[..30], FileInfoLayout::V1).is_err());
    }
}
