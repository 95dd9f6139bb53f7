//! The devnet chain: a simulated Crust node. Blocks are produced on a timer (6 s by default, milliseconds in tests)
//! and finalized at once; each carries the `timestamp.set` inherent and the scenario's signed extrinsics, and each
//! block keeps its own state (persistent maps share structure between blocks), so every RPC can be asked "at" any
//! block. Storage keys, values, events and extrinsics use the real SCALE layouts and hashers; the runtime metadata is
//! V12 shaped like mainnet spec 25 (see [`metadata`]).

pub mod metadata;
pub mod rpc;
pub mod scenario;
pub mod types;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use parity_scale_codec::{Compact, Encode};
use sp_crypto_hashing::{blake2_128, blake2_256, twox_128, twox_64};

use types::Phase;
use types::{AccountId, AccountInfo, FileInfoV2, Group, Header, Identity, Replica, WorkReport};

pub use scenario::{GroundTruth, ScenarioConfig};

/// Blocks in 180 days: a file's lifetime after its first replica.
pub const FILE_DURATION: u32 = 2_592_000;
/// Blocks per report slot.
pub const REPORT_SLOT: u32 = 600;
/// Chain time advances by the real block time whatever the devnet's block interval is.
pub const BLOCK_TIME_MS: u64 = 6000;
const GENESIS_TIME_MS: u64 = 1_700_000_000_000;

/// A well-known devnet account, from a name.
pub fn account(name: &str) -> AccountId {
    blake2_256(format!("smanager-devnet/{name}").as_bytes())
}

fn prefix(pallet: &str, item: &str) -> Vec<u8> {
    [twox_128(pallet.as_bytes()), twox_128(item.as_bytes())].concat()
}

fn twox64_concat(p: &str, i: &str, key: &[u8]) -> Vec<u8> {
    [prefix(p, i), twox_64(key).to_vec(), key.to_vec()].concat()
}

fn blake2_128_concat(p: &str, i: &str, key: &[u8]) -> Vec<u8> {
    [prefix(p, i), blake2_128(key).to_vec(), key.to_vec()].concat()
}

/// Blocks whose full state is kept; older blocks keep only their own entries (events, number, time), like a pruned
/// node, and answer other keys from the newest state.
pub const KEEP_STATES: usize = 256;

/// One block: header, extrinsics, and the state after it.
#[derive(Clone)]
pub struct Block {
    pub header: Header,
    pub hash: [u8; 32],
    pub extrinsics: Vec<Vec<u8>>,
    /// The full state after this block (`None` once pruned).
    pub state: Option<im::OrdMap<Vec<u8>, Vec<u8>>>,
    /// Entries this block itself wrote that matter after pruning: events, number, parent hash, time.
    pub own: Vec<(Vec<u8>, Vec<u8>)>,
    /// Runtime spec version this block was built with.
    pub spec: u32,
}

/// A transaction of the current block with the events it emits.
pub struct Tx {
    pub extrinsic: Vec<u8>,
    /// `(module, variant, args)` per event, in order; `System.ExtrinsicSuccess` is appended automatically.
    pub events: Vec<(u8, u8, Vec<u8>)>,
    /// The encoded `DispatchError` of an extrinsic that failed: its events are dropped, as the runtime rolls
    /// them back, and `System.ExtrinsicFailed` closes it instead.
    pub failed: Option<Vec<u8>>,
}

/// Everything the devnet chain knows.
pub struct ChainState {
    pub blocks: Vec<Block>,
    pub by_hash: HashMap<[u8; 32], u32>,
    /// Typed mirror of `Market.FilesV2` (key: CID string).
    pub files: BTreeMap<String, FileInfoV2>,
    pub nonces: HashMap<AccountId, u32>,
    pub paused: bool,
    /// `system_health.isSyncing`, as a node still importing the chain reports it.
    pub syncing: bool,
    /// How late `chain_getBlock` answers, as a slow or distant node does (zero: at once).
    pub block_delay: std::time::Duration,
    pub scenario: scenario::Scenario,
    /// Runtime spec version of the blocks being built (25; 26 after [`DevChain::upgrade_runtime`]).
    pub spec: u32,
    state: im::OrdMap<Vec<u8>, Vec<u8>>,
    queued: Vec<Tx>,
    /// Events of the block's `on_initialize` (session and era changes), before its extrinsics.
    initialization: Vec<(u8, u8, Vec<u8>)>,
    /// Events of the block's `on_finalize` (GRANDPA authority changes), after its extrinsics.
    finalization: Vec<(u8, u8, Vec<u8>)>,
}

/// The group layout of the devnet.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub owner: AccountId,
    pub members: Vec<AccountId>,
}

impl ChainState {
    /// Genesis: the group, identities, work reports, balances and a pre-fill of `prefill` FilesV2 entries.
    pub fn genesis(group: &GroupSpec, scenario: scenario::Scenario, prefill: u64) -> ChainState {
        let mut st = ChainState {
            blocks: Vec::new(),
            by_hash: HashMap::new(),
            files: BTreeMap::new(),
            nonces: HashMap::new(),
            paused: false,
            syncing: false,
            block_delay: std::time::Duration::ZERO,
            scenario,
            spec: metadata::SPEC_VERSION,
            state: im::OrdMap::new(),
            queued: Vec::new(),
            initialization: Vec::new(),
            finalization: Vec::new(),
        };
        let mut g = Group::default();
        for (i, m) in group.members.iter().enumerate() {
            g.members.insert(*m);
            g.allowlist.insert(*m);
            let anchor = blake2_256(&[m.as_slice(), b"anchor"].concat()).repeat(2);
            st.put(
                blake2_128_concat("Swork", "Identities", m),
                Identity {
                    anchor: anchor.clone(),
                    punishment_deadline: 0,
                    group: Some(group.owner),
                }
                .encode(),
            );
            st.put(
                twox64_concat("Swork", "WorkReports", &anchor.encode()),
                WorkReport {
                    report_slot: 0,
                    spower: 0,
                    free: 1 << 40,
                    reported_files_size: 0,
                    reported_srd_root: vec![i as u8; 32],
                    reported_files_root: vec![0; 32],
                }
                .encode(),
            );
        }
        st.put(blake2_128_concat("Swork", "Groups", &group.owner), g.encode());
        st.put(prefix("Swork", "CurrentReportSlot"), 0u64.encode());
        st.put(prefix("Market", "EnableMarket"), true.encode());
        for who in scenario::USERS.iter().map(|n| account(n)).chain([group.owner]) {
            st.put(
                blake2_128_concat("System", "Account", &who),
                AccountInfo {
                    providers: 1,
                    free: 1_000_000 * 1_000_000_000_000,
                    ..Default::default()
                }
                .encode(),
            );
        }
        for i in 0..prefill {
            // Synthetic CIDs for scan benchmarks: valid CIDv0 text, never ordered through IPFS.
            let digest = blake2_256(&i.to_le_bytes());
            let mut mh = vec![0x12, 0x20];
            mh.extend_from_slice(&digest);
            let cid = bs58::encode(mh).into_string();
            let info = FileInfoV2 {
                file_size: 1024 + (i % 1_000_000),
                spower: 0,
                expired_at: FILE_DURATION,
                calculated_at: 0,
                amount: 1_000_000 + u128::from(i),
                prepaid: 0,
                reported_replica_count: (i % 50) as u32,
                remaining_paid_count: 4,
                replicas: BTreeMap::new(),
            };
            st.put_file(&cid, info);
        }
        st.queued.clear();
        st.seal_block(GENESIS_TIME_MS);
        st
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.state.insert(key, value);
    }

    /// Writes a file both to the typed mirror and to `Market.FilesV2`.
    pub fn put_file(&mut self, cid: &str, info: FileInfoV2) {
        self.state
            .insert(crate::chain::keys::files_v2(cid.as_bytes()), info.encode());
        self.files.insert(cid.to_string(), info);
    }

    /// Removes a file from `Market.FilesV2`.
    pub fn remove_file(&mut self, cid: &str) {
        self.state.remove(&crate::chain::keys::files_v2(cid.as_bytes()));
        self.files.remove(cid);
    }

    /// The newest block, which is also finalized (devnet finalizes at once).
    pub fn head(&self) -> &Block {
        // There is always a genesis block.
        &self.blocks[self.blocks.len() - 1]
    }

    /// The newest block's number.
    pub fn number(&self) -> u32 {
        self.head().header.number
    }

    /// Next nonce of `who` (and bumps it).
    pub fn next_nonce(&mut self, who: &AccountId) -> u32 {
        let n = self.nonces.entry(*who).or_insert(0);
        let v = *n;
        *n += 1;
        v
    }

    /// Queues a signed transaction for the block being built.
    pub fn submit(&mut self, signer: &AccountId, call: Vec<u8>, events: Vec<(u8, u8, Vec<u8>)>) {
        self.queue_signed(signer, &call, events, None);
    }

    /// Queues a signed transaction that fails with `error` (an encoded `DispatchError`).
    pub fn submit_failing(&mut self, signer: &AccountId, call: Vec<u8>, error: Vec<u8>) {
        self.queue_signed(signer, &call, vec![], Some(error));
    }

    fn queue_signed(
        &mut self,
        signer: &AccountId,
        call: &[u8],
        events: Vec<(u8, u8, Vec<u8>)>,
        failed: Option<Vec<u8>>,
    ) {
        let nonce = self.next_nonce(signer);
        self.queued.push(Tx {
            extrinsic: types::signed_extrinsic(signer, nonce, 0, call),
            events,
            failed,
        });
    }

    /// Queues an event of the block's initialization (a session or era change).
    pub fn on_initialize_event(&mut self, event: (u8, u8, Vec<u8>)) {
        self.initialization.push(event);
    }

    /// Queues an event of the block's finalization (a GRANDPA authority change).
    pub fn on_finalize_event(&mut self, event: (u8, u8, Vec<u8>)) {
        self.finalization.push(event);
    }

    /// Transactions queued for the block being built (the timestamp inherent comes before them).
    pub fn queued_len(&self) -> usize {
        self.queued.len()
    }

    /// Queues raw extrinsic bytes (with their length prefix), e.g. garbage that no decoder accepts.
    pub fn submit_raw(&mut self, extrinsic: Vec<u8>) {
        self.queued.push(Tx {
            extrinsic,
            events: vec![],
            failed: None,
        });
    }

    /// Builds, applies and finalizes the next block.
    pub fn produce(&mut self) -> Header {
        let number = self.number() + 1;
        let now = GENESIS_TIME_MS + u64::from(number) * BLOCK_TIME_MS;
        let mut scenario = std::mem::take(&mut self.scenario);
        scenario.on_block(self, number);
        self.scenario = scenario;
        if number % REPORT_SLOT == 0 {
            self.put(prefix("Swork", "CurrentReportSlot"), u64::from(number).encode());
        }
        self.seal_block(now)
    }

    fn seal_block(&mut self, now: u64) -> Header {
        let number = self.blocks.len() as u32;
        let parent_hash = self.blocks.last().map_or([0; 32], |b| b.hash);
        let mut call = metadata::call_index(self.spec, "Timestamp", "set").to_vec();
        Compact(now).encode_to(&mut call);
        let mut extrinsics = vec![types::unsigned_extrinsic(&call)];
        let (system, success) = metadata::event_index(self.spec, "System", "ExtrinsicSuccess");
        let (_, failure) = metadata::event_index(self.spec, "System", "ExtrinsicFailed");
        let mut events: Vec<Vec<u8>> = std::mem::take(&mut self.initialization)
            .iter()
            .map(|(m, v, args)| types::event_record(Phase::Initialization, *m, *v, args))
            .collect();
        events.push(types::event_record(
            Phase::ApplyExtrinsic(0),
            system,
            success,
            &types::dispatch_info(0, 2),
        ));
        for tx in std::mem::take(&mut self.queued) {
            let phase = Phase::ApplyExtrinsic(extrinsics.len() as u32);
            match &tx.failed {
                None => {
                    for (m, v, args) in &tx.events {
                        events.push(types::event_record(phase, *m, *v, args));
                    }
                    events.push(types::event_record(
                        phase,
                        system,
                        success,
                        &types::dispatch_info(200_000_000, 0),
                    ));
                }
                Some(error) => {
                    let args = [error.as_slice(), &types::dispatch_info(200_000_000, 0)].concat();
                    events.push(types::event_record(phase, system, failure, &args));
                }
            }
            extrinsics.push(tx.extrinsic);
        }
        for (m, v, args) in std::mem::take(&mut self.finalization) {
            events.push(types::event_record(Phase::Finalization, m, v, &args));
        }
        let mut ev_bytes = Compact(events.len() as u32).encode();
        for e in &events {
            ev_bytes.extend_from_slice(e);
        }
        self.put(prefix("System", "Events"), ev_bytes);
        self.put(prefix("System", "Number"), number.encode());
        self.put(prefix("System", "ParentHash"), parent_hash.to_vec());
        self.put(prefix("Timestamp", "Now"), now.encode());
        let extrinsics_root = blake2_256(&extrinsics.concat());
        let state_root = blake2_256(&[number.encode(), extrinsics_root.to_vec(), parent_hash.to_vec()].concat());
        let header = Header {
            parent_hash,
            number,
            state_root,
            extrinsics_root,
            digest: vec![],
        };
        let hash = header.hash();
        self.by_hash.insert(hash, number);
        let own = [
            prefix("System", "Events"),
            prefix("System", "Number"),
            prefix("System", "ParentHash"),
            prefix("Timestamp", "Now"),
        ]
        .into_iter()
        .filter_map(|k| self.state.get(&k).cloned().map(|v| (k, v)))
        .collect();
        self.blocks.push(Block {
            header: header.clone(),
            hash,
            extrinsics,
            state: Some(self.state.clone()),
            own,
            spec: self.spec,
        });
        if self.blocks.len() > KEEP_STATES {
            let old = self.blocks.len() - 1 - KEEP_STATES;
            if let Some(b) = self.blocks.get_mut(old) {
                b.state = None;
            }
        }
        header
    }

    /// The block by hash, or the head when `None`.
    pub fn block_at(&self, hash: Option<[u8; 32]>) -> Option<&Block> {
        match hash {
            None => Some(self.head()),
            Some(h) => self.by_hash.get(&h).and_then(|n| self.blocks.get(*n as usize)),
        }
    }

    /// The full state to answer for `block` (its own, or the newest one once pruned).
    pub fn state_of<'a>(&'a self, block: &'a Block) -> &'a im::OrdMap<Vec<u8>, Vec<u8>> {
        match &block.state {
            Some(s) => s,
            None => &self.state,
        }
    }

    /// A storage value at `block`.
    pub fn value_at<'a>(&'a self, block: &'a Block, key: &[u8]) -> Option<&'a Vec<u8>> {
        if block.state.is_none() {
            if let Some((_, v)) = block.own.iter().find(|(k, _)| k.as_slice() == key) {
                return Some(v);
            }
        }
        self.state_of(block).get(key)
    }

    /// Adds a replica of `cid` owned by `owner` (the first one starts the file's lifetime).
    pub fn add_replica(&mut self, cid: &str, owner: &AccountId, who: &AccountId, now: u32) -> bool {
        let Some(mut f) = self.files.get(cid).cloned() else {
            return false;
        };
        if f.replicas.contains_key(owner) {
            return false;
        }
        f.replicas.insert(
            *owner,
            Replica {
                who: *who,
                valid_at: now,
                anchor: blake2_256(&[who.as_slice(), b"anchor"].concat()).repeat(2),
                is_reported: true,
                created_at: Some(now),
            },
        );
        f.reported_replica_count += 1;
        if f.expired_at == 0 {
            f.calculated_at = now;
            f.expired_at = now + FILE_DURATION;
        }
        self.put_file(cid, f);
        true
    }
}

/// Shared handle used by the block timer and the RPC server.
pub type SharedChain = Arc<Mutex<ChainState>>;

/// How to run a devnet chain.
#[derive(Debug, Clone)]
pub struct ChainConfig {
    pub bind: std::net::SocketAddr,
    /// Block interval; 0 produces blocks only on [`DevChain::produce_block`].
    pub block_ms: u64,
    pub scenario: ScenarioConfig,
    pub group: GroupSpec,
    /// FilesV2 entries present at genesis (scan benchmarks).
    pub prefill: u64,
}

impl ChainConfig {
    /// A chain on a free loopback port whose group (owned by `account("owner")`) has `members`, with no scenario
    /// orders: tests and benchmarks place their own with [`DevChain::order_now`], or override `scenario`.
    pub fn quiet(block_ms: u64, members: Vec<AccountId>) -> ChainConfig {
        ChainConfig {
            bind: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            block_ms,
            scenario: ScenarioConfig {
                order_rate: 0.0,
                ..Default::default()
            },
            group: GroupSpec {
                owner: account("owner"),
                members,
            },
            prefill: 0,
        }
    }
}

/// A running devnet chain.
pub struct DevChain {
    shared: SharedChain,
    heads: tokio::sync::broadcast::Sender<Header>,
    addr: std::net::SocketAddr,
    handle: jsonrpsee::server::ServerHandle,
    timer: Option<tokio::task::JoinHandle<()>>,
    runtime_calls: Arc<std::sync::atomic::AtomicU64>,
}

impl DevChain {
    /// Builds genesis, serves JSON-RPC on `cfg.bind` and starts the block timer.
    pub async fn start(cfg: ChainConfig, content: Arc<dyn crate::devnet::ContentSource>) -> std::io::Result<DevChain> {
        let scenario = scenario::Scenario::new(cfg.scenario.clone(), content, cfg.group.clone());
        let state = ChainState::genesis(&cfg.group, scenario, cfg.prefill);
        let shared: SharedChain = Arc::new(Mutex::new(state));
        let (heads, _) = tokio::sync::broadcast::channel(256);
        let runtime_calls = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let ctx = rpc::RpcCtx {
            chain: shared.clone(),
            heads: heads.clone(),
            metadata: rpc::metadata_bytes(),
            runtime_calls: runtime_calls.clone(),
        };
        let (addr, handle) = rpc::serve(cfg.bind, ctx).await?;
        let mut chain = DevChain {
            shared,
            heads,
            addr,
            handle,
            timer: None,
            runtime_calls,
        };
        if cfg.block_ms > 0 {
            let shared = chain.shared.clone();
            let heads = chain.heads.clone();
            let every = std::time::Duration::from_millis(cfg.block_ms);
            chain.timer = Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let header = match shared.lock() {
                        Ok(mut c) if !c.paused => Some(c.produce()),
                        _ => None,
                    };
                    if let Some(h) = header {
                        let _ = heads.send(h);
                    }
                }
            }));
        }
        Ok(chain)
    }

    /// Runtime calls answered so far (`state_call`, `state_getRuntimeVersion`).
    pub fn runtime_calls(&self) -> u64 {
        self.runtime_calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes every `chain_getBlock` answer `delay` late (a slow or distant node): a catch-up then lasts long enough
    /// for a test to act in its middle on any machine. `Duration::ZERO` answers at once again.
    pub fn slow_block_reads(&self, delay: std::time::Duration) {
        if let Ok(mut c) = self.shared.lock() {
            c.block_delay = delay;
        }
    }

    /// WebSocket endpoint for subxt and polkadot.js.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// HTTP endpoint for one-shot JSON-RPC calls.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Produces (and finalizes) one block now; returns its number.
    pub fn produce_block(&self) -> u32 {
        let header = self.shared.lock().map(|mut c| c.produce());
        match header {
            Ok(h) => {
                let n = h.number;
                let _ = self.heads.send(h);
                n
            }
            Err(_) => 0,
        }
    }

    /// Stops block production (a stalled chain) until [`DevChain::resume`].
    pub fn pause(&self) {
        if let Ok(mut c) = self.shared.lock() {
            c.paused = true;
        }
    }

    /// Produces blocks again after `pause`.
    pub fn resume(&self) {
        if let Ok(mut c) = self.shared.lock() {
            c.paused = false;
        }
    }

    /// Reports the node as syncing (`system_health.isSyncing`) or not; blocks keep coming either way.
    pub fn set_syncing(&self, on: bool) {
        if let Ok(mut c) = self.shared.lock() {
            c.syncing = on;
        }
    }

    /// The finalized head's number.
    pub fn finalized_number(&self) -> u32 {
        self.shared.lock().map(|c| c.number()).unwrap_or(0)
    }

    /// What the scenario did so far.
    pub fn ground_truth(&self) -> GroundTruth {
        self.shared.lock().map(|c| c.scenario.truth.clone()).unwrap_or_default()
    }

    /// Upgrades the runtime from the next block on: spec 26, with Market moved to pallet index 27.
    pub fn upgrade_runtime(&self) {
        if let Ok(mut c) = self.shared.lock() {
            c.spec = metadata::SPEC_VERSION + 1;
        }
    }

    /// Places an order in the next block.
    pub fn order_now(&self, cid: &str, size: u64, tips: u128) {
        if let Ok(mut c) = self.shared.lock() {
            c.scenario.manual.push((cid.to_string(), size, tips));
        }
    }

    /// Places these orders inside one `utility.batch` extrinsic in the next block (repeat CIDs allowed).
    pub fn order_batch_now(&self, orders: &[(&str, u64, u128)]) {
        if let Ok(mut c) = self.shared.lock() {
            let batch = orders
                .iter()
                .map(|(cid, size, tips)| (cid.to_string(), *size, *tips))
                .collect();
            c.scenario.manual_batches.push(batch);
        }
    }

    /// An order in the next block whose call the indexer cannot read (opaque bytes, as in a multisig): the
    /// FileSuccess event and the storage entry are all it has. Not part of the ground truth (its tips are unknown).
    pub fn order_opaque_now(&self, cid: &str, size: u64) {
        if let Ok(mut c) = self.shared.lock() {
            c.scenario.opaque_orders.push((cid.to_string(), size));
        }
    }

    /// Closes a file in the next block (`illegal`: `IllegalFileClosed`, else `calculate_reward` → `FileClosed`).
    /// Renews a stored file in the next block (expiry + `extra_blocks`, more amount), with `RenewFileSuccess`.
    pub fn renew_now(&self, cid: &str, extra_blocks: u32) {
        if let Ok(mut c) = self.shared.lock() {
            c.scenario.renewals.push((cid.to_string(), extra_blocks));
        }
    }

    /// The file's `Market.FilesV2` entry as the devnet holds it now.
    pub fn file_info(&self, cid: &str) -> Option<types::FileInfoV2> {
        self.shared.lock().ok().and_then(|c| c.files.get(cid).cloned())
    }

    pub fn close_now(&self, cid: &str, illegal: bool) {
        if let Ok(mut c) = self.shared.lock() {
            c.scenario.manual_closes.push((cid.to_string(), illegal));
        }
    }

    /// An order whose MerkleRoot is these raw bytes (not UTF-8, not a CID, oversized…), in the next block.
    pub fn order_raw(&self, merkle_root: Vec<u8>, size: u64) {
        if let Ok(mut c) = self.shared.lock() {
            c.scenario.raw_orders.push((merkle_root, size));
        }
    }

    /// Makes the next block carry an extrinsic nothing can decode.
    pub fn inject_garbage(&self) {
        if let Ok(mut c) = self.shared.lock() {
            c.scenario.garbage = true;
        }
    }

    /// Read access to the chain state (tests).
    pub fn with_state<T>(&self, f: impl FnOnce(&ChainState) -> T) -> Option<T> {
        self.shared.lock().ok().map(|c| f(&c))
    }

    /// Stops block production and both servers.
    pub async fn stop(mut self) {
        if let Some(t) = self.timer.take() {
            t.abort();
        }
        let _ = self.handle.stop();
        self.handle.clone().stopped().await;
    }
}
