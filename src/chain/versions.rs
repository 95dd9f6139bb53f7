//! Which runtime version each block runs, learned as blocks are read. subxt asks the node for every block it
//! decodes (`Core_version`, a call into the Wasm runtime on a real node) unless its configuration already knows:
//! this configuration knows whenever the block lies between two blocks seen to run the same version, because a
//! runtime upgrade must raise the spec version (`frame_system` refuses one that does not). A catch-up therefore asks
//! once for its last block and once for its first, not once per block, and still asks around every upgrade.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use subxt::config::substrate::{AccountId32, MultiAddress, MultiSignature, SubstrateHeader};
use subxt::config::{Config, HashFor, Hasher, SubstrateConfig, SubstrateExtrinsicParams};
use subxt::metadata::ArcMetadata;

/// Blocks remembered at most: two per runtime version are enough (a run's first and last seen block), the rest is
/// a margin for upgrades not yet bracketed.
const MAX_KNOWN: usize = 256;

/// (spec version, transaction version).
pub type RuntimeVersion = (u32, u32);

/// Blocks seen with their runtime version, reduced to the ends of each run of equal versions.
#[derive(Debug, Default)]
pub struct KnownVersions {
    at: BTreeMap<u64, RuntimeVersion>,
}

impl KnownVersions {
    /// The version `block` runs, when it is certain: seen at the block itself, or the same at the nearest seen
    /// blocks before and after it.
    pub fn get(&self, block: u64) -> Option<RuntimeVersion> {
        let below = self.at.range(..=block).next_back()?.1;
        let above = self.at.range(block..).next()?.1;
        (below == above).then_some(*below)
    }

    /// Remembers that `block` runs `version`. A block inside a run of equal versions adds nothing; a neighbour that
    /// the new block makes interior to its run is forgotten.
    pub fn record(&mut self, block: u64, version: RuntimeVersion) {
        if self.get(block) == Some(version) {
            return;
        }
        self.at.insert(block, version);
        // The nearest known block on each side is interior to the run when the one past it has the same version.
        let before: Vec<u64> = self.at.range(..block).rev().take(2).map(|(b, _)| *b).collect();
        let after: Vec<u64> = self.at.range(block + 1..).take(2).map(|(b, _)| *b).collect();
        for side in [before, after] {
            if let [near, far] = side[..] {
                if self.at[&near] == version && self.at[&far] == version {
                    self.at.remove(&near);
                }
            }
        }
        while self.at.len() > MAX_KNOWN {
            // Forgetting the oldest knowledge only costs a question to the node if those blocks are read again.
            self.at.pop_first();
        }
    }

    /// A block between `from` and `to` worth asking about: the middle of the first two neighbouring known blocks
    /// with different versions (an upgrade lies between them), `None` once every block in the range is known.
    /// Asking it again and again finds each upgrade in a logarithmic number of questions.
    pub fn unbracketed(&self, from: u64, to: u64) -> Option<u64> {
        let mut seen = self.at.range(from..=to);
        let mut prev = seen.next()?;
        for next in seen {
            if prev.1 != next.1 && next.0 - prev.0 > 1 {
                return Some(prev.0 + (next.0 - prev.0) / 2);
            }
            prev = next;
        }
        None
    }

    /// Blocks remembered (for tests and the bound above).
    pub fn len(&self) -> usize {
        self.at.len()
    }

    /// Whether nothing is known yet.
    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }
}

/// subxt's Substrate configuration (Crust's legacy types, metadata cached per spec version) plus the runtime
/// versions learned so far, shared with the client that records them.
#[derive(Debug, Clone)]
pub struct CrustConfig {
    substrate: SubstrateConfig,
    known: Arc<RwLock<KnownVersions>>,
}

impl CrustConfig {
    /// Wraps a Substrate configuration with an empty set of known versions.
    pub fn new(substrate: SubstrateConfig) -> Self {
        CrustConfig {
            substrate,
            known: Arc::default(),
        }
    }

    /// Records the version a block was read with (what subxt asked the node, or what this configuration knew).
    pub fn record(&self, block: u64, version: RuntimeVersion) {
        if let Ok(mut k) = self.known.write() {
            k.record(block, version);
        }
    }

    /// The version `block` is known to run, if it is.
    pub fn known(&self, block: u64) -> Option<RuntimeVersion> {
        self.known.read().ok()?.get(block)
    }

    /// The next block worth asking about to pin every upgrade between `from` and `to` (see
    /// [`KnownVersions::unbracketed`]).
    pub fn unbracketed(&self, from: u64, to: u64) -> Option<u64> {
        self.known.read().ok()?.unbracketed(from, to)
    }
}

impl Config for CrustConfig {
    type AccountId = AccountId32;
    type Address = MultiAddress<Self::AccountId, u32>;
    type Signature = MultiSignature;
    type Hasher = <SubstrateConfig as Config>::Hasher;
    type Header = SubstrateHeader<<Self::Hasher as Hasher>::Hash>;
    type TransactionExtensions = SubstrateExtrinsicParams<Self>;
    type AssetId = u32;

    fn genesis_hash(&self) -> Option<HashFor<Self>> {
        self.substrate.genesis_hash()
    }

    fn spec_and_transaction_version_for_block_number(&self, block_number: u64) -> Option<(u32, u32)> {
        self.known(block_number)
    }

    fn metadata_for_spec_version(&self, spec_version: u32) -> Option<ArcMetadata> {
        self.substrate.metadata_for_spec_version(spec_version)
    }

    fn set_metadata_for_spec_version(&self, spec_version: u32, metadata: ArcMetadata) {
        self.substrate.set_metadata_for_spec_version(spec_version, metadata);
    }

    fn legacy_types_for_spec_version<'this>(
        &'this self,
        spec_version: u32,
    ) -> Option<scale_info_legacy::TypeRegistrySet<'this>> {
        self.substrate.legacy_types_for_spec_version(spec_version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_known_only_between_two_blocks_seen_with_the_same_version() {
        let mut k = KnownVersions::default();
        assert_eq!(k.get(5), None);
        k.record(10, (25, 1));
        assert_eq!(k.get(10), Some((25, 1)));
        // Only one side seen: an upgrade may lie on the other.
        assert_eq!(k.get(9), None);
        assert_eq!(k.get(11), None);
        k.record(1_000, (25, 1));
        assert_eq!(k.get(11), Some((25, 1)));
        assert_eq!(k.get(999), Some((25, 1)));
        assert_eq!(k.get(1_001), None);
        // An upgrade between 1,000 and 2,000: nothing in between is assumed.
        k.record(2_000, (26, 2));
        assert_eq!(k.get(1_500), None);
        k.record(1_500, (26, 2));
        assert_eq!(k.get(1_200), None);
        assert_eq!(k.get(1_600), Some((26, 2)));
        k.record(1_200, (25, 1));
        assert_eq!(k.get(1_100), Some((25, 1)));
        assert_eq!(k.get(1_300), None);
    }

    #[test]
    fn bisection_finds_every_upgrade_in_a_range_with_few_questions() {
        // Upgrades at blocks 3,001 and 7,778; the truth a node would answer.
        let truth = |b: u64| -> RuntimeVersion {
            match b {
                0..=3_000 => (25, 1),
                3_001..=7_777 => (26, 1),
                _ => (27, 2),
            }
        };
        let mut k = KnownVersions::default();
        k.record(1, truth(1));
        k.record(10_000, truth(10_000));
        let mut asked = 0;
        while let Some(b) = k.unbracketed(1, 10_000) {
            assert!((1..=10_000).contains(&b));
            k.record(b, truth(b));
            asked += 1;
            assert!(asked < 100, "bisection does not end");
        }
        // About log2(10,000) per upgrade.
        assert!(asked <= 2 * 15, "{asked} questions");
        for b in (1..=10_000).step_by(7).chain([3_000, 3_001, 7_777, 7_778]) {
            assert_eq!(k.get(b), Some(truth(b)), "block {b}");
        }
        // No upgrade: nothing to ask.
        let mut k = KnownVersions::default();
        k.record(1, (25, 1));
        k.record(14_400, (25, 1));
        assert_eq!(k.unbracketed(1, 14_400), None);
        assert_eq!(k.unbracketed(20_000, 30_000), None);
    }

    #[test]
    fn only_the_ends_of_each_run_are_kept_and_memory_is_bounded() {
        let mut k = KnownVersions::default();
        // A catch-up that records every block: each run keeps its two ends.
        for b in 1..=10_000u64 {
            k.record(b, (25, 1));
        }
        assert_eq!(k.len(), 2);
        for b in 10_001..=20_000u64 {
            k.record(b, (26, 1));
        }
        assert_eq!(k.len(), 4);
        assert_eq!(k.get(5_000), Some((25, 1)));
        assert_eq!(k.get(15_000), Some((26, 1)));
        // Alternating knowledge (never two equal neighbours) stays bounded.
        let mut k = KnownVersions::default();
        for b in 0..10_000u64 {
            k.record(b * 2, (b as u32, 0));
        }
        assert!(k.len() <= MAX_KNOWN);
        assert!(!k.is_empty());
    }
}
