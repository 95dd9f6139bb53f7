//! Deterministic file content for the devnet: real dag-pb DAGs (a root linking ≤256 KiB leaves, every block
//! sha2-256), so the simulated sWorker can check each sealed block the way the enclave does. Leaves are regenerated
//! from `(seed, index)` on demand; only root blocks are kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cid::multihash::Multihash;
use cid::Cid;
use rand::{RngCore, SeedableRng};
use sp_crypto_hashing::sha2_256;

use super::ContentSource;

/// Leaf size, as IPFS chunks by default.
pub const CHUNK: u64 = 256 * 1024;
const DAG_PB: u64 = 0x70;
const SHA2_256: u64 = 0x12;

/// One file the devnet knows.
#[derive(Debug, Clone)]
pub struct FileMeta {
    pub cid: String,
    pub size: u64,
    pub seed: u64,
    pub available: bool,
    pub root: Arc<Vec<u8>>,
    pub leaves: u64,
}

impl FileMeta {
    /// Blocks in walk order (root first); leaves are rebuilt on demand.
    pub fn block(&self, index: u64) -> Option<Vec<u8>> {
        if index == 0 {
            return Some(self.root.as_ref().clone());
        }
        (index <= self.leaves).then(|| leaf_block(self.seed, index - 1, leaf_len(self.size, index - 1)))
    }

    /// Blocks in the file's DAG: the leaves plus the root.
    pub fn block_count(&self) -> u64 {
        self.leaves + 1
    }
}

/// The devnet's content: cheap to clone.
#[derive(Clone, Default)]
pub struct ContentStore {
    files: Arc<Mutex<HashMap<String, FileMeta>>>,
}

fn leaf_len(size: u64, i: u64) -> u64 {
    CHUNK.min(size.saturating_sub(i * CHUNK))
}

fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn leaf_block(seed: u64, index: u64, len: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut data = vec![0u8; len as usize];
    rng.fill_bytes(&mut data);
    // PBNode { Data = data }
    let mut out = Vec::with_capacity(data.len() + 8);
    out.push(0x0a);
    varint(data.len() as u64, &mut out);
    out.extend_from_slice(&data);
    out
}

/// The sha2-256 multihash bytes (`0x12 0x20 ‖ digest`) of a block.
pub fn multihash_bytes(block: &[u8]) -> Vec<u8> {
    let mut mh = vec![0x12, 0x20];
    mh.extend_from_slice(&sha2_256(block));
    mh
}

/// CIDv0 text (base58 multihash) of a block: what the sWorker computes for every sealed block.
pub fn cid_v0_of(block: &[u8]) -> String {
    bs58::encode(multihash_bytes(block)).into_string()
}

/// Links of a dag-pb block, as base58 multihashes (CIDv0 text), or `None` when the bytes are not dag-pb.
pub fn dag_pb_links(block: &[u8]) -> Option<Vec<String>> {
    let mut links = Vec::new();
    let mut i = 0usize;
    while i < block.len() {
        let (key, n) = read_varint(block.get(i..)?)?;
        i += n;
        if key & 7 != 2 {
            return None;
        }
        let (len, n) = read_varint(block.get(i..)?)?;
        i += n;
        let body = block.get(i..i.checked_add(len as usize)?)?;
        i += len as usize;
        if key >> 3 == 2 {
            links.push(link_hash(body)?);
        }
    }
    Some(links)
}

fn link_hash(link: &[u8]) -> Option<String> {
    let mut i = 0usize;
    while i < link.len() {
        let (key, n) = read_varint(link.get(i..)?)?;
        i += n;
        match key & 7 {
            0 => {
                let (_, n) = read_varint(link.get(i..)?)?;
                i += n;
            }
            2 => {
                let (len, n) = read_varint(link.get(i..)?)?;
                i += n;
                let body = link.get(i..i.checked_add(len as usize)?)?;
                i += len as usize;
                if key >> 3 == 1 {
                    let cid = Cid::try_from(body).ok()?;
                    return Some(bs58::encode(cid.hash().to_bytes()).into_string());
                }
            }
            _ => return None,
        }
    }
    None
}

fn read_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

impl ContentStore {
    /// An empty store; files are added by the scenario or by tests.
    pub fn new() -> Self {
        Self::default()
    }

    /// A file the devnet knows by CID.
    pub fn get(&self, cid: &str) -> Option<FileMeta> {
        self.files.lock().ok()?.get(cid).cloned()
    }

    /// Every file, for summaries.
    pub fn all(&self) -> Vec<FileMeta> {
        self.files
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Builds the DAG for `(seed, size)` and registers it.
    pub fn build(&self, seed: u64, size: u64, v1: bool, available: bool) -> FileMeta {
        let size = size.max(1);
        let leaves = size.div_ceil(CHUNK);
        // PBNode { Links = [...], Data = unixfs File marker }
        let mut root = Vec::new();
        for i in 0..leaves {
            let block = leaf_block(seed, i, leaf_len(size, i));
            let mh = multihash_bytes(&block);
            let mut link = vec![0x0a];
            varint(mh.len() as u64, &mut link);
            link.extend_from_slice(&mh);
            link.push(0x18);
            varint(block.len() as u64, &mut link);
            root.push(0x12);
            varint(link.len() as u64, &mut root);
            root.extend_from_slice(&link);
        }
        root.extend_from_slice(&[0x0a, 0x02, 0x08, 0x02]);
        let digest = sha2_256(&root);
        let mh = Multihash::<64>::wrap(SHA2_256, &digest).unwrap_or_default();
        let cid = if v1 {
            Cid::new_v1(DAG_PB, mh)
        } else {
            Cid::new_v0(mh).unwrap_or(Cid::new_v1(DAG_PB, mh))
        };
        let meta = FileMeta {
            cid: cid.to_string(),
            size,
            seed,
            available,
            root: Arc::new(root),
            leaves,
        };
        if let Ok(mut m) = self.files.lock() {
            m.insert(meta.cid.clone(), meta.clone());
        }
        meta
    }

    /// Makes a known file (un)available, e.g. to let a stalled CID appear later.
    pub fn set_available(&self, cid: &str, available: bool) {
        if let Ok(mut m) = self.files.lock() {
            if let Some(f) = m.get_mut(cid) {
                f.available = available;
            }
        }
    }
}

impl ContentSource for ContentStore {
    fn create(&self, seed: u64, size: u64, v1: bool, available: bool) -> String {
        self.build(seed, size, v1, available).cid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dags_are_real_and_deterministic() {
        let store = ContentStore::new();
        let a = store.build(7, 600 * 1024, false, true);
        let b = ContentStore::new().build(7, 600 * 1024, false, true);
        assert_eq!(a.cid, b.cid);
        assert!(a.cid.starts_with("Qm"));
        assert_eq!(a.block_count(), 4);
        let root = a.block(0).unwrap_or_default();
        assert_eq!(cid_v0_of(&root), a.cid, "CIDv0 is the root block's multihash");
        let links = dag_pb_links(&root).unwrap_or_default();
        assert_eq!(links.len(), 3);
        for i in 1..=3 {
            let leaf = a.block(i).unwrap_or_default();
            assert_eq!(cid_v0_of(&leaf), links[(i - 1) as usize]);
            assert_eq!(dag_pb_links(&leaf), Some(vec![]));
        }
        let v1 = store.build(7, 600 * 1024, true, true);
        assert!(v1.cid.starts_with("bafy"));
        let parsed = Cid::try_from(v1.cid.as_str()).expect("v1");
        assert_eq!(bs58::encode(parsed.hash().to_bytes()).into_string(), a.cid);
    }
}

/// CIDs without content, for benchmarks that need millions of orders: valid CID text derived from the seed, no DAG.
#[derive(Clone, Default)]
pub struct SyntheticContent;

impl ContentSource for SyntheticContent {
    fn create(&self, seed: u64, size: u64, v1: bool, _available: bool) -> String {
        let digest = sp_crypto_hashing::blake2_256(&[seed.to_le_bytes(), size.to_le_bytes()].concat());
        let mh = Multihash::<64>::wrap(SHA2_256, &digest).unwrap_or_default();
        if v1 {
            Cid::new_v1(DAG_PB, mh).to_string()
        } else {
            Cid::new_v0(mh).map(|c| c.to_string()).unwrap_or_default()
        }
    }
}
