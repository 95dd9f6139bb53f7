//! The Crust chain through subxt 0.51 with the legacy backend: Crust runs metadata V12, which subxt decodes with the
//! legacy type definitions in `crust_types.yaml`; the same code reads V14+ runtimes from their own metadata.
//!
//! Pallet, call and event indices are never hard-coded: each block is decoded with the metadata of its own runtime
//! version, by name.

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

use super::{keys, ss58, ChainError, ChainEvent, CloseReason, FileOrder, IndexedBlock};
use crate::config::ChainSettings;

/// A connected chain client.
pub struct SubxtChain {
    api: OnlineClient<SubstrateConfig>,
    rpc: LegacyRpcMethods<RpcConfigFor<SubstrateConfig>>,
}

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

    fn block(&self, number: u64) -> LocalBoxFuture<'_, Result<IndexedBlock, ChainError>> {
        Box::pin(async move {
            let c = self.client().await?;
            let started = std::time::Instant::now();
            let r = c.decode_block(number).await;
            crate::metrics::observe_rpc("chain", "block", started.elapsed());
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
        let config = SubstrateConfig::builder().set_legacy_types(types).build();
        let backend = LegacyBackend::<SubstrateConfig>::builder().build(rpc_client.clone());
        let api = OnlineClient::from_backend_with_config(config, Arc::new(backend))
            .await
            .map_err(|e| ChainError::Unavailable(e.to_string()))?;
        Ok(SubxtChain {
            api,
            rpc: LegacyRpcMethods::new(rpc_client),
        })
    }

    /// The raw RPC methods, for callers that page storage without metadata (the FilesV2 scanner).
    pub fn rpc(&self) -> &LegacyRpcMethods<RpcConfigFor<SubstrateConfig>> {
        &self.rpc
    }

    async fn decode_block(&self, number: u64) -> Result<IndexedBlock, ChainError> {
        let unavailable = |e: &dyn std::fmt::Display| ChainError::Unavailable(format!("block {number}: {e}"));
        let decode = |e: &dyn std::fmt::Display| ChainError::Decode {
            number,
            reason: e.to_string(),
        };
        let at = self.api.at_block(number).await.map_err(|e| unavailable(&e))?;
        let hash = format!("{:?}", at.block_hash());
        let exts = at.extrinsics().fetch().await.map_err(|e| unavailable(&e))?;
        let events = at.events().fetch().await.map_err(|e| unavailable(&e))?;

        let mut calls: Vec<Option<Value>> = Vec::with_capacity(exts.len());
        let mut signers: Vec<Option<[u8; 32]>> = Vec::with_capacity(exts.len());
        for ext in exts.iter() {
            let ext = ext.map_err(|e| decode(&e))?;
            signers.push(ext.address_bytes().and_then(account_from_address));
            calls.push(ext.decode_call_data_as::<Value>().ok());
        }

        let mut out = Vec::new();
        for ev in events.iter() {
            let ev = ev.map_err(|e| decode(&e))?;
            if ev.pallet_name() != "Market" {
                continue;
            }
            let name = ev.event_name().to_string();
            if !matches!(
                name.as_str(),
                "FileSuccess" | "CalculateSuccess" | "FileClosed" | "IllegalFileClosed"
            ) {
                continue;
            }
            let fields: Value = ev
                .decode_fields_unchecked_as::<Value>()
                .map_err(|e| decode(&format!("Market.{name}: {e}")))?;
            let values = unnamed_fields(&fields);
            let cid_value = if name == "FileSuccess" {
                values.get(1)
            } else {
                values.first()
            };
            let Some(raw) = cid_value.and_then(|v| value_bytes(v)) else {
                return Err(decode(&format!("Market.{name} without a MerkleRoot")));
            };
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
            match name.as_str() {
                "FileSuccess" => {
                    let owner_bytes = values
                        .first()
                        .and_then(|v| value_bytes(v))
                        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok());
                    let ext_index = match ev.phase() {
                        Phase::ApplyExtrinsic(i) => Some(i as usize),
                        _ => None,
                    };
                    let call = ext_index.and_then(|i| calls.get(i)).and_then(|c| c.as_ref());
                    let Some((size, tips)) = call.and_then(|c| find_order(c, raw.as_slice())) else {
                        out.push(ChainEvent::Invalid {
                            raw: cid,
                            reason: "FileSuccess without a matching place_storage_order call".into(),
                        });
                        continue;
                    };
                    let owner = owner_bytes
                        .or_else(|| ext_index.and_then(|i| signers.get(i).copied().flatten()))
                        .map(|id| ss58::encode(ss58::CRUST_PREFIX, &id))
                        .unwrap_or_default();
                    out.push(ChainEvent::Ordered(FileOrder { cid, size, tips, owner }));
                }
                "CalculateSuccess" => {
                    let key = keys::files_v2(&raw);
                    let still = at.storage().fetch_raw(key).await.map(|v| !v.is_empty()).or_else(|e| {
                        if is_not_found(&e) {
                            Ok(false)
                        } else {
                            Err(unavailable(&e))
                        }
                    })?;
                    if !still {
                        out.push(ChainEvent::Closed {
                            cid,
                            reason: CloseReason::Closed,
                        });
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
        // A block's events may repeat a close (CalculateSuccess + FileClosed): keep one.
        out.dedup();
        let timestamp_ms = match at.storage().fetch_raw(keys::timestamp_now()).await {
            Ok(v) => v
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes),
            Err(_) => None,
        };
        Ok(IndexedBlock {
            number,
            hash,
            timestamp_ms,
            events: out,
        })
    }
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

/// Finds the `place_storage_order` for `cid` anywhere in a call, including inside `utility.batch`/`batch_all`:
/// any composite with `cid`, `reported_file_size` and `tips` fields.
pub fn find_order(call: &Value, cid: &[u8]) -> Option<(u64, u128)> {
    match &call.value {
        ValueDef::Composite(Composite::Named(fields)) => {
            let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
            if let (Some(c), Some(size)) = (get("cid"), get("reported_file_size")) {
                if value_bytes(c).as_deref() == Some(cid) {
                    let size = u128_of(size).and_then(|s| u64::try_from(s).ok())?;
                    let tips = get("tips").and_then(u128_of).unwrap_or(0);
                    return Some((size, tips));
                }
            }
            fields.iter().find_map(|(_, v)| find_order(v, cid))
        }
        ValueDef::Composite(Composite::Unnamed(vs)) => vs.iter().find_map(|v| find_order(v, cid)),
        ValueDef::Variant(var) => match &var.values {
            Composite::Named(fields) => {
                let as_value = Value::named_composite(fields.clone());
                find_order(&as_value, cid)
            }
            Composite::Unnamed(vs) => vs.iter().find_map(|v| find_order(v, cid)),
        },
        _ => None,
    }
}

impl super::ChainSource for SubxtChain {
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

    fn keys_paged(
        &self,
        prefix: Vec<u8>,
        count: u32,
        start: Option<Vec<u8>>,
    ) -> LocalBoxFuture<'_, Result<Vec<Vec<u8>>, ChainError>> {
        Box::pin(async move {
            self.rpc
                .state_get_keys_paged(&prefix, count, start.as_deref(), None)
                .await
                .map_err(|e| ChainError::Unavailable(format!("state_getKeysPaged: {e}")))
        })
    }

    fn values(&self, keys: Vec<Vec<u8>>) -> LocalBoxFuture<'_, Result<Vec<Option<Vec<u8>>>, ChainError>> {
        Box::pin(async move {
            let sets = self
                .rpc
                .state_query_storage_at(keys.iter().map(|k| k.as_slice()), None)
                .await
                .map_err(|e| ChainError::Unavailable(format!("state_queryStorageAt: {e}")))?;
            let mut found: std::collections::HashMap<Vec<u8>, Option<Vec<u8>>> = std::collections::HashMap::new();
            for set in sets {
                for (k, v) in set.changes {
                    found.insert(k.0, v.map(|v| v.0));
                }
            }
            Ok(keys.iter().map(|k| found.get(k).cloned().flatten()).collect())
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
