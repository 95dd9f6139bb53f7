//! Substrate JSON-RPC over WebSocket and HTTP (one port) for the devnet chain: what subxt's legacy backend, our
//! indexer and polkadot.js call. Unknown methods get the standard `-32601` error from the server.

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::server::{PendingSubscriptionSink, RpcModule, Server, ServerHandle, SubscriptionMessage};
use jsonrpsee::types::{ErrorObjectOwned, Params};
use parity_scale_codec::Encode;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use super::metadata::{self, SPEC_VERSION, TX_VERSION};
use super::types::Header;
use super::{Block, SharedChain};

/// Shared by every RPC call.
pub struct RpcCtx {
    pub chain: SharedChain,
    pub heads: broadcast::Sender<Header>,
    pub metadata: Vec<u8>,
    /// Runtime calls answered (`state_call`, `state_getRuntimeVersion`): on a real node each runs the Wasm runtime,
    /// so tests check how many a client asks for.
    pub runtime_calls: Arc<std::sync::atomic::AtomicU64>,
}

fn err(code: i32, msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, msg.into(), None::<()>)
}

fn hex0x(b: &[u8]) -> String {
    format!("0x{}", hex::encode(b))
}

fn parse_hex(s: &str) -> Result<Vec<u8>, ErrorObjectOwned> {
    hex::decode(s.trim_start_matches("0x")).map_err(|e| err(-32602, format!("invalid hex `{s}`: {e}")))
}

fn parse_hash(s: Option<String>) -> Result<Option<[u8; 32]>, ErrorObjectOwned> {
    match s {
        None => Ok(None),
        Some(s) => {
            let b = parse_hex(&s)?;
            <[u8; 32]>::try_from(b.as_slice())
                .map(Some)
                .map_err(|_| err(-32602, format!("invalid block hash `{s}`")))
        }
    }
}

/// Runs `f` on the block named by an optional hash parameter at `pos`.
fn at_block<T>(
    ctx: &RpcCtx,
    hash: Option<String>,
    f: impl FnOnce(&super::ChainState, &Block) -> T,
) -> Result<Option<T>, ErrorObjectOwned> {
    let hash = parse_hash(hash)?;
    let chain = ctx.chain.lock().map_err(|_| err(-32603, "chain state poisoned"))?;
    Ok(chain.block_at(hash).map(|b| f(&chain, b)))
}

/// The runtime version of the block named by an optional hash.
fn spec_at(ctx: &RpcCtx, hash: Option<String>) -> Result<u32, ErrorObjectOwned> {
    at_block(ctx, hash, |_, b| b.spec)?.ok_or_else(|| err(-32602, "unknown block"))
}

/// Metadata bytes of a runtime version (the devnet's own one is precomputed).
fn metadata_of(ctx: &RpcCtx, spec: u32) -> Vec<u8> {
    if spec == SPEC_VERSION {
        ctx.metadata.clone()
    } else {
        metadata::encode_for(spec)
    }
}

fn runtime_version(spec: u32) -> Value {
    json!({
        "specName": "crust", "implName": "crustio-crust", "authoringVersion": 1,
        "specVersion": spec, "implVersion": 1, "transactionVersion": TX_VERSION,
        "apis": [["0xdf6acb689907609b", 3], ["0x37e397fc7c91f5e4", 1], ["0x40fe3ad401f8959a", 4],
                 ["0xd2bc9897eed08f15", 2], ["0xf78b278be53f454c", 2], ["0xaf2c0297a23e6d3d", 1],
                 ["0xed99c5acb25eedf5", 2], ["0xcbca25e39f142387", 2], ["0x687ad44ad37f03c2", 1],
                 ["0xab3c0572291feb8b", 1], ["0xbc9d89904f5b923f", 1], ["0x37c8bb1350a9a2a8", 1]]
    })
}

fn runtime_version_scale(spec: u32) -> Vec<u8> {
    let apis: Vec<([u8; 8], u32)> = runtime_version(spec)["apis"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| {
                    let id = hex::decode(x[0].as_str()?.trim_start_matches("0x")).ok()?;
                    Some((<[u8; 8]>::try_from(id.as_slice()).ok()?, x[1].as_u64()? as u32))
                })
                .collect()
        })
        .unwrap_or_default();
    (
        "crust".to_string(),
        "crustio-crust".to_string(),
        1u32,
        spec,
        1u32,
        apis,
        TX_VERSION,
    )
        .encode()
}

fn keys_under(state: &im::OrdMap<Vec<u8>, Vec<u8>>, prefix: &[u8], start: Option<&[u8]>, count: usize) -> Vec<String> {
    let from = match start {
        Some(s) if s > prefix => s.to_vec(),
        _ => prefix.to_vec(),
    };
    state
        .range(from.clone()..)
        .filter(|(k, _)| start.is_none_or(|s| k.as_slice() > s))
        .take_while(|(k, _)| k.starts_with(prefix))
        .take(count)
        .map(|(k, _)| hex0x(k))
        .collect()
}

/// Builds the RPC module.
pub fn module(ctx: RpcCtx) -> Result<RpcModule<RpcCtx>, jsonrpsee::core::RegisterMethodError> {
    let mut m = RpcModule::new(ctx);
    m.register_method("system_health", |_, ctx: &RpcCtx, _| {
        let syncing = ctx.chain.lock().map(|c| c.syncing).unwrap_or(false);
        json!({"peers": 0, "isSyncing": syncing, "shouldHavePeers": false})
    })?;
    m.register_method("system_chain", |_, _, _| "Crust")?;
    m.register_method("system_name", |_, _, _| "crust-devnet")?;
    m.register_method("system_version", |_, _, _| "0.9.0-smanager-devnet")?;
    m.register_method("system_chainType", |_, _, _| "Development")?;
    m.register_method(
        "system_properties",
        |_, _, _| json!({"ss58Format": 66, "tokenDecimals": 12, "tokenSymbol": "CRU"}),
    )?;
    m.register_method(
        "chain_getBlockHash",
        |p: Params, ctx: &RpcCtx, _| -> Result<Value, ErrorObjectOwned> {
            let mut seq = p.sequence();
            let n: Option<Value> = seq.optional_next()?;
            let chain = ctx.chain.lock().map_err(|_| err(-32603, "poisoned"))?;
            let one = |v: &Value| -> Value {
                let n = v.as_u64().or_else(|| {
                    v.as_str()
                        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                });
                n.and_then(|n| chain.blocks.get(n as usize))
                    .map_or(Value::Null, |b| json!(hex0x(&b.hash)))
            };
            Ok(match n {
                None | Some(Value::Null) => json!(hex0x(&chain.head().hash)),
                Some(Value::Array(items)) => Value::Array(items.iter().map(one).collect()),
                Some(v) => one(&v),
            })
        },
    )?;
    m.register_method(
        "chain_getFinalizedHead",
        |_, ctx: &RpcCtx, _| -> Result<String, ErrorObjectOwned> {
            let chain = ctx.chain.lock().map_err(|_| err(-32603, "poisoned"))?;
            Ok(hex0x(&chain.head().hash))
        },
    )?;
    m.register_method(
        "chain_getHeader",
        |p: Params, ctx: &RpcCtx, _| -> Result<Option<Value>, ErrorObjectOwned> {
            let h: Option<String> = p.sequence().optional_next()?;
            at_block(ctx, h, |_, b| b.header.to_json())
        },
    )?;
    m.register_async_method("chain_getBlock", |p: Params<'static>, ctx: Arc<RpcCtx>, _| async move {
        let h: Option<String> = p.sequence().optional_next()?;
        let delay = ctx.chain.lock().map(|c| c.block_delay).unwrap_or_default();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        at_block(&ctx, h, |_, b| {
            json!({"block": {"header": b.header.to_json(),
                             "extrinsics": b.extrinsics.iter().map(|x| hex0x(x)).collect::<Vec<_>>()},
                   "justifications": null})
        })
    })?;
    m.register_method(
        "state_getRuntimeVersion",
        |p: Params, ctx: &RpcCtx, _| -> Result<Value, ErrorObjectOwned> {
            let h: Option<String> = p.sequence().optional_next()?;
            ctx.runtime_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(runtime_version(spec_at(ctx, h)?))
        },
    )?;
    m.register_method(
        "chain_getRuntimeVersion",
        |p: Params, ctx: &RpcCtx, _| -> Result<Value, ErrorObjectOwned> {
            let h: Option<String> = p.sequence().optional_next()?;
            ctx.runtime_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Ok(runtime_version(spec_at(ctx, h)?))
        },
    )?;
    m.register_method(
        "state_getMetadata",
        |p: Params, ctx: &RpcCtx, _| -> Result<String, ErrorObjectOwned> {
            let h: Option<String> = p.sequence().optional_next()?;
            let spec = spec_at(ctx, h)?;
            Ok(hex0x(&metadata_of(ctx, spec)))
        },
    )?;
    m.register_method(
        "state_call",
        |p: Params, ctx: &RpcCtx, _| -> Result<String, ErrorObjectOwned> {
            let mut seq = p.sequence();
            let method: String = seq.next()?;
            let _data: Option<String> = seq.optional_next()?;
            let h: Option<String> = seq.optional_next()?;
            let spec = spec_at(ctx, h)?;
            ctx.runtime_calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match method.as_str() {
                "Core_version" => Ok(hex0x(&runtime_version_scale(spec))),
                "Metadata_metadata" => Ok(hex0x(&metadata_of(ctx, spec).encode())),
                other => Err(err(
                    -32000,
                    format!("Client error: Execution failed: Exported method {other} is not found"),
                )),
            }
        },
    )?;
    m.register_method(
        "state_getStorage",
        |p: Params, ctx: &RpcCtx, _| -> Result<Option<String>, ErrorObjectOwned> {
            let mut seq = p.sequence();
            let key: String = seq.next()?;
            let key = parse_hex(&key)?;
            let h: Option<String> = seq.optional_next()?;
            Ok(at_block(ctx, h, |c, b| c.value_at(b, &key).map(|v| hex0x(v)))?.flatten())
        },
    )?;
    m.register_method(
        "state_getStorageHash",
        |p: Params, ctx: &RpcCtx, _| -> Result<Option<String>, ErrorObjectOwned> {
            let mut seq = p.sequence();
            let key = parse_hex(&seq.next::<String>()?)?;
            let h: Option<String> = seq.optional_next()?;
            Ok(at_block(ctx, h, |c, b| {
                c.value_at(b, &key).map(|v| hex0x(&sp_crypto_hashing::blake2_256(v)))
            })?
            .flatten())
        },
    )?;
    m.register_method(
        "state_getKeysPaged",
        |p: Params, ctx: &RpcCtx, _| -> Result<Vec<String>, ErrorObjectOwned> {
            let mut seq = p.sequence();
            let prefix = parse_hex(&seq.next::<String>()?)?;
            let count: u32 = seq.next()?;
            if count > 1000 {
                return Err(err(-32602, "count exceeds maximum value (1000)"));
            }
            let start: Option<String> = seq.optional_next()?;
            let start = start.map(|s| parse_hex(&s)).transpose()?;
            let h: Option<String> = seq.optional_next()?;
            Ok(at_block(ctx, h, |c, b| {
                keys_under(c.state_of(b), &prefix, start.as_deref(), count as usize)
            })?
            .unwrap_or_default())
        },
    )?;
    m.register_method(
        "state_queryStorageAt",
        |p: Params, ctx: &RpcCtx, _| -> Result<Value, ErrorObjectOwned> {
            let mut seq = p.sequence();
            let keys: Vec<String> = seq.next()?;
            let keys = keys.iter().map(|k| parse_hex(k)).collect::<Result<Vec<_>, _>>()?;
            let h: Option<String> = seq.optional_next()?;
            let r = at_block(ctx, h, |c, b| {
                let changes: Vec<Value> = keys
                    .iter()
                    .map(|k| json!([hex0x(k), c.value_at(b, k).map(|v| hex0x(v))]))
                    .collect();
                json!([{"block": hex0x(&b.hash), "changes": changes}])
            })?;
            r.ok_or_else(|| err(-32602, "unknown block"))
        },
    )?;
    m.register_method("rpc_methods", |_, _, _| {
        json!({"version": 1, "methods": [
            "chain_getBlock", "chain_getBlockHash", "chain_getFinalizedHead", "chain_getHeader",
            "chain_subscribeAllHeads", "chain_subscribeFinalizedHeads", "chain_subscribeNewHeads",
            "chain_unsubscribeAllHeads", "chain_unsubscribeFinalizedHeads", "chain_unsubscribeNewHeads",
            "rpc_methods", "state_call", "state_getKeysPaged", "state_getMetadata", "state_getRuntimeVersion",
            "state_getStorage", "state_getStorageHash", "state_queryStorageAt", "state_subscribeRuntimeVersion",
            "state_subscribeStorage", "state_unsubscribeRuntimeVersion", "state_unsubscribeStorage",
            "system_chain", "system_chainType", "system_health", "system_name", "system_properties", "system_version"]})
    })?;
    for (sub, notif, unsub) in [
        (
            "chain_subscribeFinalizedHeads",
            "chain_finalizedHead",
            "chain_unsubscribeFinalizedHeads",
        ),
        ("chain_subscribeNewHeads", "chain_newHead", "chain_unsubscribeNewHeads"),
        ("chain_subscribeAllHeads", "chain_allHead", "chain_unsubscribeAllHeads"),
    ] {
        m.register_subscription(
            sub,
            notif,
            unsub,
            |_, pending: PendingSubscriptionSink, ctx: Arc<RpcCtx>, _| async move {
                let mut rx = ctx.heads.subscribe();
                let current = ctx.chain.lock().map(|c| c.head().header.to_json()).ok();
                let sink = pending.accept().await?;
                if let Some(h) = current {
                    sink.send(SubscriptionMessage::from(serde_json::value::to_raw_value(&h)?))
                        .await?;
                }
                loop {
                    match rx.recv().await {
                        Ok(h) => {
                            sink.send(SubscriptionMessage::from(serde_json::value::to_raw_value(
                                &h.to_json(),
                            )?))
                            .await?
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    }
                }
            },
        )?;
    }
    m.register_subscription(
        "state_subscribeRuntimeVersion",
        "state_runtimeVersion",
        "state_unsubscribeRuntimeVersion",
        |_, pending: PendingSubscriptionSink, ctx: Arc<RpcCtx>, _| async move {
            let sink = pending.accept().await?;
            sink.send(SubscriptionMessage::from(serde_json::value::to_raw_value(
                &runtime_version(ctx.chain.lock().map(|c| c.head().spec).unwrap_or(SPEC_VERSION)),
            )?))
            .await?;
            // The runtime never upgrades on the devnet; keep the subscription open until the client leaves.
            let mut rx = ctx.heads.subscribe();
            while rx.recv().await.is_ok() {}
            SubscriptionResult::Ok(())
        },
    )?;
    m.register_subscription(
        "state_subscribeStorage",
        "state_storage",
        "state_unsubscribeStorage",
        |p: Params<'static>, pending: PendingSubscriptionSink, ctx: Arc<RpcCtx>, _| async move {
            let keys: Vec<String> = p.sequence().optional_next()?.unwrap_or_default();
            let keys: Vec<Vec<u8>> = keys
                .iter()
                .filter_map(|k| hex::decode(k.trim_start_matches("0x")).ok())
                .collect();
            let mut rx = ctx.heads.subscribe();
            let sink = pending.accept().await?;
            let mut last: Vec<Option<Vec<u8>>> = vec![];
            loop {
                let snapshot = ctx.chain.lock().ok().map(|c| {
                    let b = c.head();
                    (
                        b.hash,
                        keys.iter().map(|k| c.value_at(b, k).cloned()).collect::<Vec<_>>(),
                    )
                });
                if let Some((hash, values)) = snapshot {
                    let changes: Vec<Value> = keys
                        .iter()
                        .zip(&values)
                        .enumerate()
                        .filter(|(i, (_, v))| last.get(*i) != Some(*v))
                        .map(|(_, (k, v))| json!([hex0x(k), v.as_ref().map(|v| hex0x(v))]))
                        .collect();
                    if !changes.is_empty() || last.is_empty() {
                        let msg = json!({"block": hex0x(&hash), "changes": changes});
                        sink.send(SubscriptionMessage::from(serde_json::value::to_raw_value(&msg)?))
                            .await?;
                    }
                    last = values;
                }
                match rx.recv().await {
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        },
    )?;
    Ok(m)
}

/// Serves the module on `addr`; returns the bound address and the server handle.
pub async fn serve(addr: SocketAddr, ctx: RpcCtx) -> std::io::Result<(SocketAddr, ServerHandle)> {
    let server = Server::builder().build(addr).await?;
    let bound = server.local_addr()?;
    let module = module(ctx).map_err(std::io::Error::other)?;
    Ok((bound, server.start(module)))
}

/// The metadata bytes the devnet serves.
pub fn metadata_bytes() -> Vec<u8> {
    metadata::encode()
}
