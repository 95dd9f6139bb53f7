//! The Crust chain through subxt 0.51 with the legacy backend: Crust runs metadata V12, which subxt decodes with the
//! legacy type definitions in `crust_types.yaml`; the same code reads V14+ runtimes from their own metadata.
//!
//! Pallet, call and event indices are never hard-coded: each block is decoded with the metadata of its own runtime
//! version, by name.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use futures_util::future::LocalBoxFuture;
use subxt::backend::LegacyBackend;
use subxt::config::RpcConfigFor;
use subxt::dynamic::Value;
use subxt::events::Phase;
use subxt::ext::scale_value::{Composite, Primitive, ValueDef};
use subxt::rpcs::methods::legacy::LegacyRpcMethods;
use subxt::rpcs::RpcClient;
use subxt::{OnlineClient, SubstrateConfig};

use super::layout::{LayoutError, Layouts};
use super::versions::CrustConfig;

use super::{
    decode_file_info_as, keys, ss58, ChainError, ChainEvent, CloseReason, FileInfoLayout, FileOrder, IndexedBlock,
};
use crate::config::ChainSettings;

/// A connected chain client.
pub struct SubxtChain {
    api: OnlineClient<CrustConfig>,
    rpc: LegacyRpcMethods<RpcConfigFor<CrustConfig>>,
    /// The same connection, for the answers read without subxt's types ([`super::raw`]).
    raw: RpcClient,
    /// The client's configuration: records the runtime version of every block read.
    config: CrustConfig,
    /// Addresses of the accounts seen lately: a few accounts place most orders, and encoding one (a Blake2b-512 and
    /// a base58 division) costs more than decoding the order.
    addresses: std::cell::RefCell<HashMap<[u8; 32], String>>,
    /// Each runtime's layouts (or why it has none), compiled from its metadata the first time one of its blocks is
    /// read.
    layouts: std::cell::RefCell<HashMap<u32, Result<Rc<Layouts>, LayoutError>>>,
    /// Runtimes a block of which the layouts could not take (said once at `warn`).
    slow_specs: std::cell::RefCell<std::collections::HashSet<u32>>,
}

/// Which reader [`SubxtChain::read_block`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// Layouts only: a block they cannot take is an error (what tests compare).
    Layout,
    /// subxt only.
    Subxt,
    /// Layouts, and subxt for a block they cannot take: what the indexer uses.
    LayoutThenSubxt,
}

/// Accounts whose address is kept; the cache starts afresh beyond.
const KEPT_ADDRESSES: usize = 4096;

/// A chain source for `settings.endPoint` (ws:// or http://) that connects on first use and reconnects after a
/// connection error, so smanager can start before the node and survive node restarts. The Indexer backs off between
/// attempts.
pub fn connect(settings: &ChainSettings) -> Rc<dyn super::ChainSource> {
    Rc::new(Reconnecting {
        url: settings.end_point.clone(),
        client: std::cell::RefCell::new(None),
    })
}

/// Lazily connected, reconnecting [`SubxtChain`].
pub struct Reconnecting {
    url: String,
    client: std::cell::RefCell<Option<Rc<SubxtChain>>>,
}

impl Reconnecting {
    async fn client(&self) -> Result<Rc<SubxtChain>, ChainError> {
        if let Some(c) = self.client.borrow().as_ref() {
            return Ok(c.clone());
        }
        let c = Rc::new(SubxtChain::connect(&self.url).await?);
        log::info!(target: "smanager::chain", "connected to {}", self.url);
        *self.client.borrow_mut() = Some(c.clone());
        Ok(c)
    }

    fn forget_on_unavailable<T>(&self, r: Result<T, ChainError>) -> Result<T, ChainError> {
        if let Err(ChainError::Unavailable(e)) = &r {
            log::debug!(target: "smanager::chain", "dropping the connection after: {e}");
            *self.client.borrow_mut() = None;
        }
        r
    }
}

impl super::ChainSource for Reconnecting {
    fn subscribe_finalized(
        &self,
    ) -> LocalBoxFuture<'_, Result<futures_util::stream::LocalBoxStream<'static, u64>, ChainError>> {
        Box::pin(async move {
            let c = self.client().await?;
            let r = c.subscribe_finalized().await;
            self.forget_on_unavailable(r)
        })
    }

    fn finalized_head(&self) -> LocalBoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(async move {
            let c = self.client().await?;
            let started = std::time::Instant::now();
            let r = c.finalized_head().await;
            crate::metrics::observe_rpc("chain", "finalized_head", started.elapsed());
            self.forget_on_unavailable(r)
        })
    }

    fn group(&self, account: [u8; 32]) -> LocalBoxFuture<'_, Result<super::GroupView, ChainError>> {
        Box::pin(async move {
            let c = self.client().await?;
            let r = c.group(account).await;
            self.forget_on_unavailable(r)
        })
    }

    fn keys_paged(
        &self,
        prefix: Vec<u8>,
        count: u32,
        start: Option<Vec<u8>>,
    ) -> LocalBoxFuture<'_, Result<Vec<Vec<u8>>, ChainError>> {
        Box::pin(async move {
            let c = self.client().await?;
            let started = std::time::Instant::now();
            let r = c.keys_paged(prefix, count, start).await;
            crate::metrics::observe_rpc("chain", "keys_paged", started.elapsed());
            self.forget_on_unavailable(r)
        })
    }

    fn values(&self, keys: Vec<Vec<u8>>) -> LocalBoxFuture<'_, Result<Vec<Option<Vec<u8>>>, ChainError>> {
        Box::pin(async move {
            let c = self.client().await?;
            let started = std::time::Instant::now();
            let r = c.values(keys).await;
            crate::metrics::observe_rpc("chain", "query_storage_at", started.elapsed());
            self.forget_on_unavailable(r)
        })
    }

    fn is_syncing(&self) -> LocalBoxFuture<'_, Result<bool, ChainError>> {
        Box::pin(async move {
            let c = self.client().await?;
            let r = c.is_syncing().await;
            self.forget_on_unavailable(r)
        })
    }

    fn spec_version(&self) -> LocalBoxFuture<'_, Result<u32, ChainError>> {
        Box::pin(async move {
            let c = self.client().await?;
            let r = c.spec_version().await;
            self.forget_on_unavailable(r)
        })
    }

    fn block(&self, number: u64) -> LocalBoxFuture<'_, Result<IndexedBlock, ChainError>> {
        Box::pin(async move {
            let c = self.client().await?;
            let started = std::time::Instant::now();
            let r = c.decode_block(number).await;
            crate::metrics::observe_rpc("chain", "block", started.elapsed());
            self.forget_on_unavailable(r)
        })
    }

    fn learn_runtime_versions(&self, from: u64, to: u64) -> LocalBoxFuture<'_, Result<(), ChainError>> {
        Box::pin(async move {
            let c = self.client().await?;
            let r = c.learn_runtime_versions(from, to).await;
            self.forget_on_unavailable(r)
        })
    }
}

impl SubxtChain {
    /// Opens a WebSocket connection and loads the runtime's metadata and legacy types.
    pub async fn connect(url: &str) -> Result<Self, ChainError> {
        let rpc_client = RpcClient::from_insecure_url(url)
            .await
            .map_err(|e| ChainError::Unavailable(format!("{url}: {e}")))?;
        let types = super::legacy_types().map_err(|e| ChainError::Unavailable(format!("legacy types: {e}")))?;
        let config = CrustConfig::new(SubstrateConfig::builder().set_legacy_types(types).build());
        let backend = LegacyBackend::<CrustConfig>::builder().build(rpc_client.clone());
        let api = OnlineClient::from_backend_with_config(config.clone(), Arc::new(backend))
            .await
            .map_err(|e| ChainError::Unavailable(e.to_string()))?;
        Ok(SubxtChain {
            api,
            rpc: LegacyRpcMethods::new(rpc_client.clone()),
            raw: rpc_client,
            config,
            addresses: Default::default(),
            layouts: Default::default(),
            slow_specs: Default::default(),
        })
    }

    /// The layouts of runtime `spec`, compiled from `metadata` the first time.
    fn layouts(&self, spec: u32, metadata: &subxt::metadata::Metadata) -> Result<Rc<Layouts>, LayoutError> {
        if let Some(known) = self.layouts.borrow().get(&spec) {
            return known.clone();
        }
        // Compiled once per runtime, failure included: a runtime whose metadata cannot be compiled is read by subxt
        // without trying again for every block.
        let compiled = Layouts::compile(metadata).map(Rc::new);
        if let Err(e) = &compiled {
            log::warn!(target: "smanager::chain", "spec {spec}: no layouts ({e}); its blocks are read by subxt, more slowly");
        }
        self.layouts.borrow_mut().insert(spec, compiled.clone());
        compiled
    }

    /// Logs and counts a block the layouts could not take: once per runtime at `warn` (the metric counts every
    /// block), then at `debug`.
    fn note_read_by_subxt(&self, number: u64, spec: u32, why: &LayoutError) {
        if self.slow_specs.borrow_mut().insert(spec) {
            log::warn!(target: "smanager::chain", "block {number} (spec {spec}) read by subxt: {why}; later blocks of this runtime that need it are logged at debug");
        } else {
            log::debug!(target: "smanager::chain", "block {number} read by subxt: {why}");
        }
        crate::metrics::METRICS.blocks_read_by_subxt_total.inc();
    }

    /// The Crust address of `id`, encoded once while it stays in the cache.
    fn address(&self, id: &[u8; 32]) -> String {
        let mut kept = self.addresses.borrow_mut();
        if let Some(a) = kept.get(id) {
            return a.clone();
        }
        if kept.len() >= KEPT_ADDRESSES {
            kept.clear();
        }
        let a = ss58::encode(ss58::CRUST_PREFIX, id);
        kept.insert(*id, a.clone());
        a
    }

    /// The raw RPC methods, for callers that page storage without metadata (the FilesV2 scanner).
    pub fn rpc(&self) -> &LegacyRpcMethods<RpcConfigFor<CrustConfig>> {
        &self.rpc
    }

    /// What one block costs the node to serve (hash, body, events) with nothing decoded: the floor `smanager bench`
    /// compares catch-up against. Returns the bytes received.
    pub async fn fetch_block_raw(&self, number: u64) -> Result<usize, ChainError> {
        use subxt::rpcs::methods::legacy::NumberOrHex;
        let err = |e: &dyn std::fmt::Display| ChainError::Unavailable(format!("block {number}: {e}"));
        let hash = self
            .rpc
            .chain_get_block_hash(Some(NumberOrHex::Number(number)))
            .await
            .map_err(|e| err(&e))?
            .ok_or_else(|| err(&"no such block"))?;
        let (body, events) = super::raw::block_and_events(&self.raw, hash)
            .await
            .map_err(|e| err(&e))?;
        let body: usize = body.map_or(0, |b| b.iter().map(Vec::len).sum());
        Ok(body + events.len())
    }

    /// Asks the node which runtime version block `number` runs (subxt's own question, unless already known) and
    /// remembers it.
    pub async fn learn_runtime_version(&self, number: u64) -> Result<(), ChainError> {
        self.at_block(number).await.map(drop)
    }

    /// subxt's view of block `number`, its runtime version remembered (asked of the node only when not known).
    async fn at_block(
        &self,
        number: u64,
    ) -> Result<
        subxt::client::ClientAtBlock<CrustConfig, subxt::client::OnlineClientAtBlockImpl<CrustConfig>>,
        ChainError,
    > {
        let at = self
            .api
            .at_block(number)
            .await
            .map_err(|e| ChainError::Unavailable(format!("block {number}: {e}")))?;
        self.config
            .record(number, (at.spec_version(), at.transaction_version()));
        Ok(at)
    }

    /// Learns the runtime version of every block from `from` to `to`: both ends, then bisects each span whose ends
    /// differ (about log2(span) questions per upgrade).
    pub async fn learn_runtime_versions(&self, from: u64, to: u64) -> Result<(), ChainError> {
        self.learn_runtime_version(from).await?;
        self.learn_runtime_version(to).await?;
        while let Some(mid) = self.config.unbracketed(from, to) {
            self.learn_runtime_version(mid).await?;
        }
        Ok(())
    }

    /// The runtime version `number` is known to run without asking the node (what tests check).
    pub fn known_runtime_version(&self, number: u64) -> Option<(u32, u32)> {
        self.config.known(number)
    }

    /// Block `number` as the indexer stores it. It is read by layout ([`super::layout`]); a block that reading
    /// cannot take (a shape it does not know) is read by subxt, whose errors are the ones reported.
    async fn decode_block(&self, number: u64) -> Result<IndexedBlock, ChainError> {
        self.read_block(number, Reader::LayoutThenSubxt).await
    }

    /// Block `number` read as `reader` says: tests compare both readers on the same blocks.
    pub async fn read_block(&self, number: u64, reader: Reader) -> Result<IndexedBlock, ChainError> {
        let unavailable = |e: &dyn std::fmt::Display| ChainError::Unavailable(format!("block {number}: {e}"));
        let decode = |e: &dyn std::fmt::Display| ChainError::Decode {
            number,
            reason: e.to_string(),
        };
        let at = self.at_block(number).await?;
        let hash = format!("{:?}", at.block_hash());
        // Body and events read by `raw`, then decoded from the bytes.
        let (body, event_bytes) = super::raw::block_and_events(&self.raw, at.block_hash())
            .await
            .map_err(|e| unavailable(&e))?;
        let body = body.ok_or_else(|| unavailable(&"the node does not have this block"))?;
        let spec = at.spec_version();
        let by_layout = match reader {
            Reader::Subxt => None,
            _ => match self
                .layouts(spec, at.metadata_ref())
                .and_then(|l| facts_by_layout(&l, at.metadata_ref(), &body, &event_bytes))
            {
                Ok(facts) => Some(facts),
                Err(e) if reader == Reader::Layout => return Err(decode(&e)),
                Err(e) => {
                    self.note_read_by_subxt(number, spec, &e);
                    None
                }
            },
        };
        let facts = match by_layout {
            Some(facts) => facts,
            None => facts_by_subxt(&at, body, event_bytes).await.map_err(|e| decode(&e))?,
        };
        let mut out = Vec::new();
        // How many orders per (extrinsic, CID) the FileSuccess events have used: the n-th FileSuccess for a CID is the
        // n-th order for it, so two orders on one CID in one batch, or in two extrinsics, are two orders with their
        // own size and tips.
        let mut used: HashMap<(usize, Vec<u8>), usize> = HashMap::new();
        for MarketEvent {
            name,
            cid: raw,
            who,
            extrinsic: ext_index,
        } in facts.events
        {
            let cid = match parse_cid(&raw) {
                Ok(c) => c,
                Err(reason) => {
                    out.push(ChainEvent::Invalid {
                        raw: String::from_utf8_lossy(&raw).into_owned(),
                        reason: format!("Market.{name}: {reason}"),
                    });
                    continue;
                }
            };
            match name {
                "FileSuccess" => {
                    let owner_bytes = who.and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok());
                    let from_call = ext_index.and_then(|i| {
                        let orders = facts.orders.get(&i)?;
                        let n = used.entry((i, raw.clone())).or_insert(0);
                        let mine: Vec<&(Vec<u8>, u64, u128)> = orders.iter().filter(|o| o.0 == raw).collect();
                        let hit = mine.get(*n).or(mine.last()).map(|o| (o.1, o.2));
                        *n += 1;
                        hit
                    });
                    let (size, tips) = match from_call {
                        Some(found) => found,
                        None => {
                            // The call did not decode (or holds no matching order): the order still happened, so
                            // take its size from the file's storage entry at this block; its tips are unknown.
                            match stored_file_size(&at, &raw, spec).await {
                                Ok(Some(size)) => {
                                    log::warn!(target: "smanager::chain",
                                        "block {number}: FileSuccess for {cid} without a decodable order call; size {size} taken from storage, tips unknown");
                                    (size, 0)
                                }
                                Ok(None) => {
                                    out.push(ChainEvent::Invalid {
                                        raw: cid,
                                        reason:
                                            "FileSuccess without a matching place_storage_order call or storage entry"
                                                .into(),
                                    });
                                    continue;
                                }
                                Err(e) => return Err(unavailable(&e)),
                            }
                        }
                    };
                    let owner = owner_bytes
                        .or_else(|| ext_index.and_then(|i| facts.signers.get(&i).copied()))
                        .map(|id| self.address(&id))
                        .unwrap_or_default();
                    out.push(ChainEvent::Ordered(FileOrder { cid, size, tips, owner }));
                }
                "CalculateSuccess" => {
                    // The map of this block's own runtime: `Market.Files` before spec 17, `FilesV2` after (both
                    // during spec 17's migration). Reading the wrong one would close a live file.
                    let still = stored_file_size(&at, &raw, spec)
                        .await
                        .map_err(|e| unavailable(&e))?
                        .is_some();
                    if !still {
                        out.push(ChainEvent::Closed {
                            cid,
                            reason: CloseReason::Closed,
                        });
                    }
                }
                "RenewFileSuccess" | "AddPrepaidSuccess" => {
                    if let Some((size, expired_at, amount, replicas)) =
                        stored_file_facts(&at, &raw, spec).await.map_err(|e| unavailable(&e))?
                    {
                        out.push(ChainEvent::Refreshed(super::ScannedFile {
                            cid,
                            size,
                            expired_at,
                            amount,
                            replicas,
                        }));
                    }
                }
                "FileClosed" => out.push(ChainEvent::Closed {
                    cid,
                    reason: CloseReason::Closed,
                }),
                _ => out.push(ChainEvent::Closed {
                    cid,
                    reason: CloseReason::Illegal,
                }),
            }
        }
        // A block's events may repeat a close (CalculateSuccess + FileClosed): keep one. Repeat orders are kept:
        // each is an order of its own.
        out.dedup_by(|a, b| matches!(a, ChainEvent::Closed { .. }) && a == b);
        // The `timestamp.set` inherent carries what `Timestamp.Now` holds after the block: read from the body already
        // fetched, one request per block fewer. A block without a decodable one asks the storage.
        let timestamp_ms = match facts.timestamp_ms {
            Some(set) => Some(set),
            None => match at.storage().fetch_raw(keys::timestamp_now()).await {
                Ok(v) => v
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(u64::from_le_bytes),
                Err(_) => None,
            },
        };
        Ok(IndexedBlock {
            number,
            hash,
            timestamp_ms,
            events: out,
        })
    }
}

/// What a block says that the indexer acts on, whichever reader read it.
#[derive(Debug, Default)]
struct BlockFacts {
    /// The Market events the indexer acts on, in order.
    events: Vec<MarketEvent>,
    /// The orders of each extrinsic a `FileSuccess` names, in call order (batches flattened); empty when its call
    /// holds none or does not decode.
    orders: HashMap<usize, Vec<(Vec<u8>, u64, u128)>>,
    /// The signer of each extrinsic a `FileSuccess` names, when its address is an account.
    signers: HashMap<usize, [u8; 32]>,
    /// What the block's `timestamp.set` inherent set.
    timestamp_ms: Option<u64>,
}

impl BlockFacts {
    /// Adds a Market event; the first time a `FileSuccess` names an extrinsic, `read` gives that extrinsic's
    /// orders and signer.
    fn note(
        &mut self,
        name: &'static str,
        cid: Vec<u8>,
        who: Option<Vec<u8>>,
        extrinsic: Option<usize>,
        read: impl FnOnce(usize) -> (Vec<(Vec<u8>, u64, u128)>, Option<[u8; 32]>),
    ) {
        if let Some(i) = extrinsic.filter(|_| name == "FileSuccess") {
            if let std::collections::hash_map::Entry::Vacant(e) = self.orders.entry(i) {
                let (orders, signer) = read(i);
                e.insert(orders);
                if let Some(signer) = signer {
                    self.signers.insert(i, signer);
                }
            }
        }
        self.events.push(MarketEvent {
            name,
            cid,
            who,
            extrinsic,
        });
    }
}

/// A Market event's MerkleRoot, its account (orders, renewals, top-ups) and the extrinsic that emitted it.
#[derive(Debug)]
struct MarketEvent {
    name: &'static str,
    cid: Vec<u8>,
    who: Option<Vec<u8>>,
    extrinsic: Option<usize>,
}

/// The Market events the indexer acts on.
const MARKET_EVENTS: [&str; 6] = [
    "FileSuccess",
    "CalculateSuccess",
    "FileClosed",
    "IllegalFileClosed",
    "RenewFileSuccess",
    "AddPrepaidSuccess",
];

/// Whether a Market event's first field is the account (orders, renewals, top-ups) and its MerkleRoot the second.
fn names_account(name: &str) -> bool {
    matches!(name, "FileSuccess" | "RenewFileSuccess" | "AddPrepaidSuccess")
}

fn market_event(pallet: &str, name: &str) -> Option<&'static str> {
    (pallet == "Market")
        .then(|| MARKET_EVENTS.iter().find(|n| **n == name).copied())
        .flatten()
}

type AtBlock = subxt::client::ClientAtBlock<CrustConfig, subxt::client::OnlineClientAtBlockImpl<CrustConfig>>;

/// A block's facts read by subxt, from the metadata of the block's runtime.
async fn facts_by_subxt(at: &AtBlock, body: Vec<Vec<u8>>, event_bytes: Vec<u8>) -> Result<BlockFacts, String> {
    let exts = at.extrinsics().from_bytes(body).await;
    let events = at.events().from_bytes(event_bytes);
    let exts = exts.iter().collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?;
    let mut facts = BlockFacts::default();
    for ev in events.iter() {
        let ev = ev.map_err(|e| e.to_string())?;
        let Some(name) = market_event(ev.pallet_name(), ev.event_name()) else {
            continue;
        };
        let (cid, who) = match market_event_bytes(&ev, name) {
            Some(found) => found,
            None => {
                let fields: Value = ev
                    .decode_fields_unchecked_as::<Value>()
                    .map_err(|e| format!("Market.{name}: {e}"))?;
                let values = unnamed_fields(&fields);
                // (AccountId, MerkleRoot, …) for orders, renewals and prepaid; (MerkleRoot, …) for closes.
                let (cid_value, who) = if names_account(name) {
                    (values.get(1), values.first().and_then(|v| value_bytes(v)))
                } else {
                    (values.first(), None)
                };
                let Some(cid) = cid_value.and_then(|v| value_bytes(v)) else {
                    return Err(format!("Market.{name} without a MerkleRoot"));
                };
                (cid, who)
            }
        };
        let extrinsic = match ev.phase() {
            Phase::ApplyExtrinsic(i) => Some(i as usize),
            _ => None,
        };
        facts.note(name, cid, who, extrinsic, |i| {
            let x = exts.get(i);
            let mut v = Vec::new();
            let direct = x.and_then(|x| {
                (x.pallet_name() == "Market" && x.call_name() == "place_storage_order")
                    .then(|| x.decode_call_data_fields_unchecked_as::<PlaceStorageOrder>().ok())
                    .flatten()
            });
            if let Some(o) = direct {
                v.push((o.cid, o.reported_file_size, o.tips));
            } else if let Some(call) = x.and_then(|x| x.decode_call_data_as::<Value>().ok()) {
                orders_in_call(&call, at.metadata_ref(), &mut v);
            }
            (v, x.and_then(|x| x.address_bytes().and_then(account_from_address)))
        });
    }
    facts.timestamp_ms = exts.iter().find_map(|x| {
        (x.pallet_name() == "Timestamp" && x.call_name() == "set")
            .then(|| x.decode_call_data_fields_unchecked_as::<TimestampSet>().ok())
            .flatten()
            .map(|set| set.now)
    });
    Ok(facts)
}

/// Every order in a call decoded as a `Value` (batches, `as_derivative`, multisig's opaque calls decoded as calls
/// of this runtime).
fn orders_in_call(call: &Value, metadata: &subxt::metadata::Metadata, out: &mut Vec<(Vec<u8>, u64, u128)>) {
    find_orders(call, out);
    let mut opaque = Vec::new();
    opaque_calls(call, &mut opaque);
    for bytes in opaque {
        if let Some(inner) = call_value(&bytes, metadata) {
            find_orders(&inner, out);
        }
    }
}

/// Encoded call bytes (pallet index first) decoded as a call of this runtime, as subxt decodes a call's data.
fn call_value(bytes: &[u8], metadata: &subxt::metadata::Metadata) -> Option<Value> {
    <Value as subxt::ext::scale_decode::DecodeAsType>::decode_as_type(
        &mut &bytes[..],
        metadata.outer_enums().call_enum_ty(),
        metadata.types(),
    )
    .ok()
}

/// A block's facts read by layout: the same facts as [`facts_by_subxt`], or an error for anything it does not
/// know the shape of (the caller then asks subxt). Calls other than a direct `place_storage_order` are decoded as
/// `Value`s, as subxt decodes them.
fn facts_by_layout(
    layouts: &Layouts,
    metadata: &subxt::metadata::Metadata,
    body: &[Vec<u8>],
    event_bytes: &[u8],
) -> Result<BlockFacts, LayoutError> {
    let exts = body
        .iter()
        .map(|b| layouts.extrinsic(b))
        .collect::<Result<Vec<_>, _>>()?;
    let shape = |name: &str| LayoutError::Unexpected(format!("Market.{name} has fields of another shape"));
    let mut facts = BlockFacts::default();
    for ev in layouts.events(event_bytes)? {
        let Some(name) = market_event(&ev.info.pallet, &ev.info.name) else {
            continue;
        };
        let mut data = ev.fields;
        let mut bytes = |ty: u32| layouts.read_bytes(ty, &mut data)?.ok_or_else(|| shape(name));
        // The shapes `market_event_bytes` reads; any other is subxt's to read.
        let (who, cid) = match (name, ev.info.fields.as_slice()) {
            ("FileSuccess" | "RenewFileSuccess", [who, cid]) => (Some(bytes(*who)?), bytes(*cid)?),
            ("AddPrepaidSuccess", [who, cid, amount]) => {
                let found = (Some(bytes(*who)?), bytes(*cid)?);
                layouts.read_uint(*amount, &mut data)?.ok_or_else(|| shape(name))?;
                found
            }
            (_, [cid]) if !names_account(name) => (None, bytes(*cid)?),
            _ => return Err(shape(name)),
        };
        let extrinsic = ev.extrinsic.map(|i| i as usize);
        facts.note(name, cid, who, extrinsic, |i| {
            let x = exts.get(i);
            let mut v = Vec::new();
            let direct = x.filter(|x| x.call.pallet == "Market" && x.call.name == "place_storage_order");
            if let Some(o) = direct.and_then(|x| direct_order(layouts, x)) {
                v.push(o);
            } else if let Some(call) = x.and_then(|x| call_value(x.call_bytes, metadata)) {
                orders_in_call(&call, metadata, &mut v);
            }
            (v, x.and_then(|x| x.address).and_then(account_from_address))
        });
    }
    facts.timestamp_ms = exts
        .iter()
        .filter(|x| x.call.pallet == "Timestamp" && x.call.name == "set")
        .find_map(|x| {
            let mut data = x.args;
            let mut now = None;
            for (name, ty) in &x.call.args {
                let v = layouts.read_uint(*ty, &mut data).ok()?;
                if name == "now" {
                    now = v.and_then(|v| u64::try_from(v).ok());
                }
            }
            now
        });
    Ok(facts)
}

/// A direct `place_storage_order`'s (cid, size, tips), read by name as [`PlaceStorageOrder`] decodes them; `None`
/// when one is missing or of another type.
fn direct_order(layouts: &Layouts, x: &super::layout::Extrinsic<'_>) -> Option<(Vec<u8>, u64, u128)> {
    let mut data = x.args;
    let (mut cid, mut size, mut tips) = (None, None, None);
    for (name, ty) in &x.call.args {
        match name.as_str() {
            "cid" => cid = layouts.read_bytes(*ty, &mut data).ok()?,
            "reported_file_size" => {
                size = layouts
                    .read_uint(*ty, &mut data)
                    .ok()?
                    .and_then(|v| u64::try_from(v).ok())
            }
            "tips" => tips = layouts.read_uint(*ty, &mut data).ok()?,
            _ => layouts.skip(*ty, &mut data).ok()?,
        }
    }
    Some((cid?, size?, tips?))
}

/// The size of `cid`'s file in the storage map(s) of the block's runtime, or `None` when the chain holds no entry.
async fn stored_file_size<C: subxt::client::OnlineClientAtBlockT<CrustConfig>>(
    at: &subxt::client::ClientAtBlock<CrustConfig, C>,
    cid: &[u8],
    spec: u32,
) -> Result<Option<u64>, String> {
    Ok(stored_file_facts(at, cid, spec).await?.map(|(size, ..)| size))
}

/// The file's storage entry at `at` in the map of that block's runtime, as (size, expired_at, amount, replicas);
/// `None` when the file is not stored. An entry that exists but does not decode counts as alive with zeros.
async fn stored_file_facts<C: subxt::client::OnlineClientAtBlockT<CrustConfig>>(
    at: &subxt::client::ClientAtBlock<CrustConfig, C>,
    cid: &[u8],
    spec: u32,
) -> Result<Option<(u64, u32, u128, u32)>, String> {
    let mut maps = Vec::new();
    if spec >= super::FILES_V2_SPEC {
        maps.push((keys::files_v2(cid), FileInfoLayout::V2));
    }
    if spec <= super::FILES_V2_SPEC {
        maps.push((keys::files_v1(cid), FileInfoLayout::of(true, spec)));
    }
    for (key, layout) in maps {
        let value = match at.storage().fetch_raw(key).await {
            Ok(v) if !v.is_empty() => v,
            Ok(_) => continue,
            Err(e) if is_not_found(&e) => continue,
            Err(e) => return Err(e.to_string()),
        };
        return match decode_file_info_as(&value, layout) {
            Ok(facts) => Ok(Some(facts)),
            // The entry exists (so the file is alive) even if its value does not decode.
            Err(e) => {
                log::warn!(target: "smanager::chain", "FileInfo of {} does not decode: {e}", String::from_utf8_lossy(cid));
                Ok(Some((0, 0, 0, 0)))
            }
        };
    }
    Ok(None)
}

fn is_not_found(e: &subxt::error::StorageError) -> bool {
    let s = e.to_string().to_ascii_lowercase();
    s.contains("not found") || s.contains("no value") || s.contains("no storage value")
}

/// Raw 32-byte addresses (Crust: Address = AccountId), or a MultiAddress::Id on newer runtimes.
fn account_from_address(bytes: &[u8]) -> Option<[u8; 32]> {
    match bytes.len() {
        32 => <[u8; 32]>::try_from(bytes).ok(),
        33 if bytes.first() == Some(&0) => <[u8; 32]>::try_from(&bytes[1..]).ok(),
        _ => None,
    }
}

/// A MerkleRoot is the CID string's ASCII bytes.
pub fn parse_cid(raw: &[u8]) -> Result<String, String> {
    if raw.len() > 512 {
        return Err(format!("MerkleRoot of {} bytes is too long for a CID", raw.len()));
    }
    let s = std::str::from_utf8(raw).map_err(|_| "MerkleRoot is not UTF-8".to_string())?;
    cid::Cid::try_from(s).map_err(|e| format!("`{s}` is not a CID: {e}"))?;
    Ok(s.to_string())
}

fn unnamed_fields(v: &Value) -> Vec<&Value> {
    match &v.value {
        ValueDef::Composite(Composite::Unnamed(vs)) => vs.iter().collect(),
        ValueDef::Composite(Composite::Named(vs)) => vs.iter().map(|(_, v)| v).collect(),
        _ => vec![v],
    }
}

/// A direct `Market.place_storage_order` call's arguments the indexer needs, decoded by name straight into bytes and
/// integers (other arguments skipped): decoding the call as a `Value` costs an allocation per CID byte. Calls of
/// another shape (and orders inside batches or multisig) are read as `Value`s.
#[derive(subxt::ext::scale_decode::DecodeAsType)]
#[decode_as_type(crate_path = "subxt::ext::scale_decode")]
struct PlaceStorageOrder {
    cid: Vec<u8>,
    reported_file_size: u64,
    tips: u128,
}

/// `timestamp.set(#[compact] now)`, the inherent every block starts with.
#[derive(subxt::ext::scale_decode::DecodeAsType)]
#[decode_as_type(crate_path = "subxt::ext::scale_decode")]
struct TimestampSet {
    now: u64,
}

/// The MerkleRoot of a Market event (and, for orders, renewals and top-ups, the account before it), decoded straight
/// into bytes when the fields have the shape every Crust runtime gives them: `(AccountId, MerkleRoot)`,
/// `(AccountId, MerkleRoot, Balance)` for `AddPrepaidSuccess`, `(MerkleRoot)` for closes. `None` for any other shape,
/// which is then read as `Value`s.
fn market_event_bytes<T: subxt::Config>(
    ev: &subxt::events::Event<'_, T>,
    name: &str,
) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    match name {
        "FileSuccess" | "RenewFileSuccess" => ev
            .decode_fields_unchecked_as::<(Vec<u8>, Vec<u8>)>()
            .ok()
            .map(|(who, cid)| (cid, Some(who))),
        "AddPrepaidSuccess" => ev
            .decode_fields_unchecked_as::<(Vec<u8>, Vec<u8>, u128)>()
            .ok()
            .map(|(who, cid, _)| (cid, Some(who))),
        _ => ev
            .decode_fields_unchecked_as::<(Vec<u8>,)>()
            .ok()
            .map(|(cid,)| (cid, None)),
    }
}

/// A `Vec<u8>` or `[u8; N]` decoded as a composite of small integers.
pub fn value_bytes(v: &Value) -> Option<Vec<u8>> {
    let items: Vec<&Value> = match &v.value {
        ValueDef::Composite(Composite::Unnamed(vs)) => vs.iter().collect(),
        ValueDef::Composite(Composite::Named(vs)) if vs.len() == 1 => return value_bytes(&vs[0].1),
        _ => return None,
    };
    if items.len() == 1 {
        // A newtype wrapper around the bytes (e.g. AccountId32([u8; 32])).
        if let Some(inner) = value_bytes(items[0]) {
            if !matches!(items[0].value, ValueDef::Primitive(_)) {
                return Some(inner);
            }
        }
    }
    items
        .iter()
        .map(|i| match &i.value {
            ValueDef::Primitive(Primitive::U128(n)) => u8::try_from(*n).ok(),
            _ => None,
        })
        .collect()
}

fn u128_of(v: &Value) -> Option<u128> {
    match &v.value {
        ValueDef::Primitive(Primitive::U128(n)) => Some(*n),
        ValueDef::Composite(Composite::Unnamed(vs)) if vs.len() == 1 => u128_of(&vs[0]),
        ValueDef::Composite(Composite::Named(vs)) if vs.len() == 1 => u128_of(&vs[0].1),
        _ => None,
    }
}

/// Every `place_storage_order` anywhere in a call, in call order (batches, nested batches, `as_derivative`,
/// multisig): any composite with `cid`, `reported_file_size` and `tips` fields. Yields (cid bytes, size, tips).
pub fn find_orders(call: &Value, out: &mut Vec<(Vec<u8>, u64, u128)>) {
    match &call.value {
        ValueDef::Composite(c) => orders_in(c, out),
        // A call's arguments are the variant's fields.
        ValueDef::Variant(var) => orders_in(&var.values, out),
        _ => {}
    }
}

/// Byte strings in fields named `call` (multisig's `OpaqueCall`), anywhere in a call.
pub fn opaque_calls(call: &Value, out: &mut Vec<Vec<u8>>) {
    let fields: Vec<(&str, &Value)> = match &call.value {
        ValueDef::Composite(Composite::Named(f)) => f.iter().map(|(n, v)| (n.as_str(), v)).collect(),
        ValueDef::Variant(var) => match &var.values {
            Composite::Named(f) => f.iter().map(|(n, v)| (n.as_str(), v)).collect(),
            Composite::Unnamed(vs) => vs.iter().map(|v| ("", v)).collect(),
        },
        ValueDef::Composite(Composite::Unnamed(vs)) => vs.iter().map(|v| ("", v)).collect(),
        _ => Vec::new(),
    };
    for (name, v) in fields {
        match value_bytes(v) {
            Some(bytes) if name == "call" && !bytes.is_empty() => out.push(bytes),
            Some(_) => {}
            None => opaque_calls(v, out),
        }
    }
}

fn orders_in(c: &Composite<()>, out: &mut Vec<(Vec<u8>, u64, u128)>) {
    match c {
        Composite::Named(fields) => {
            let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            if let (Some(c), Some(size)) = (get("cid"), get("reported_file_size")) {
                if let (Some(cid), Some(size)) = (value_bytes(c), u128_of(size).and_then(|s| u64::try_from(s).ok())) {
                    let tips = get("tips").and_then(u128_of).unwrap_or(0);
                    out.push((cid, size, tips));
                    return;
                }
            }
            fields.iter().for_each(|(_, v)| find_orders(v, out));
        }
        Composite::Unnamed(vs) => vs.iter().for_each(|v| find_orders(v, out)),
    }
}

impl super::ChainSource for SubxtChain {
    fn subscribe_finalized(
        &self,
    ) -> LocalBoxFuture<'_, Result<futures_util::stream::LocalBoxStream<'static, u64>, ChainError>> {
        use futures_util::StreamExt;
        Box::pin(async move {
            let sub = self
                .rpc
                .chain_subscribe_finalized_heads()
                .await
                .map_err(|e| ChainError::Unavailable(format!("chain_subscribeFinalizedHeads: {e}")))?;
            // An error ends the stream: the indexer falls back to polling and subscribes again later.
            Ok(sub
                .take_while(|r| std::future::ready(r.is_ok()))
                .filter_map(|r| std::future::ready(r.ok().map(|h| h.number)))
                .boxed_local())
        })
    }

    fn finalized_head(&self) -> LocalBoxFuture<'_, Result<u64, ChainError>> {
        Box::pin(async move {
            let hash = self
                .rpc
                .chain_get_finalized_head()
                .await
                .map_err(|e| ChainError::Unavailable(e.to_string()))?;
            let header = self
                .rpc
                .chain_get_header(Some(hash))
                .await
                .map_err(|e| ChainError::Unavailable(e.to_string()))?
                .ok_or_else(|| ChainError::Unavailable("finalized head has no header".into()))?;
            Ok(header.number)
        })
    }

    fn block(&self, number: u64) -> LocalBoxFuture<'_, Result<IndexedBlock, ChainError>> {
        Box::pin(self.decode_block(number))
    }

    fn learn_runtime_versions(&self, from: u64, to: u64) -> LocalBoxFuture<'_, Result<(), ChainError>> {
        Box::pin(SubxtChain::learn_runtime_versions(self, from, to))
    }

    fn keys_paged(
        &self,
        prefix: Vec<u8>,
        count: u32,
        start: Option<Vec<u8>>,
    ) -> LocalBoxFuture<'_, Result<Vec<Vec<u8>>, ChainError>> {
        Box::pin(async move {
            super::raw::keys_paged(&self.raw, &prefix, count, start.as_deref())
                .await
                .map_err(|e| ChainError::Unavailable(format!("state_getKeysPaged: {e}")))
        })
    }

    fn values(&self, keys: Vec<Vec<u8>>) -> LocalBoxFuture<'_, Result<Vec<Option<Vec<u8>>>, ChainError>> {
        Box::pin(async move {
            let changes = super::raw::query_storage_at(&self.raw, &keys)
                .await
                .map_err(|e| ChainError::Unavailable(format!("state_queryStorageAt: {e}")))?;
            let found: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>> = changes.into_iter().collect();
            Ok(keys.iter().map(|k| found.get(k).cloned().flatten()).collect())
        })
    }

    fn spec_version(&self) -> LocalBoxFuture<'_, Result<u32, ChainError>> {
        Box::pin(async move {
            self.rpc
                .state_get_runtime_version(None)
                .await
                .map(|v| v.spec_version)
                .map_err(|e| ChainError::Unavailable(format!("state_getRuntimeVersion: {e}")))
        })
    }

    fn is_syncing(&self) -> LocalBoxFuture<'_, Result<bool, ChainError>> {
        Box::pin(async move {
            self.rpc
                .system_health()
                .await
                .map(|h| h.is_syncing)
                .map_err(|e| ChainError::Unavailable(format!("system_health: {e}")))
        })
    }

    fn group(&self, account: [u8; 32]) -> LocalBoxFuture<'_, Result<super::GroupView, ChainError>> {
        Box::pin(async move {
            let get = |key: Vec<u8>| async move {
                self.rpc
                    .state_get_storage(&key, None)
                    .await
                    .map_err(|e| ChainError::Unavailable(e.to_string()))
            };
            let mut view = super::GroupView::default();
            if let Some(own) = get(keys::groups(&account)).await? {
                view.account_is_owner = !super::decode_group_members(&own).unwrap_or_default().is_empty();
            }
            let Some(identity) = get(keys::identities(&account)).await? else {
                return Ok(view);
            };
            let decode = |e: String| ChainError::Decode { number: 0, reason: e };
            view.owner = super::decode_identity_group(&identity).map_err(decode)?;
            if let Some(owner) = view.owner {
                if let Some(group) = get(keys::groups(&owner)).await? {
                    view.members = super::decode_group_members(&group).map_err(decode)?;
                }
            }
            Ok(view)
        })
    }
}
