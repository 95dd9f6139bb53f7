//! Block bodies, storage keys and storage values read straight off the node's JSON-RPC answers. subxt's own types decode their
//! hex one character at a time, which was a tenth of the indexer's CPU in a catch-up; here it is decoded with SIMD
//! (`const-hex`), and the bytes are handed to subxt to decode as usual.

use serde::de::{Deserializer, Visitor};
use serde::Deserialize;
use subxt::rpcs::{rpc_params, RpcClient};

/// Bytes the node sends as a `0x`-prefixed hex string.
pub struct HexBytes(pub Vec<u8>);

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct HexVisitor;
        impl Visitor<'_> for HexVisitor {
            type Value = HexBytes;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a 0x-prefixed hex string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HexBytes, E> {
                let digits = v
                    .strip_prefix("0x")
                    .ok_or_else(|| E::custom(format!("hex without 0x: {:.16}", v)))?;
                const_hex::decode(digits)
                    .map(HexBytes)
                    .map_err(|e| E::custom(format!("bad hex ({e})")))
            }
        }
        d.deserialize_str(HexVisitor)
    }
}

#[derive(Deserialize)]
struct SignedBlock {
    block: Block,
}

#[derive(Deserialize)]
struct Block {
    extrinsics: Vec<HexBytes>,
}

/// `chain_getBlock`: the block's extrinsics, `None` when the node does not have the block.
pub async fn block_body(rpc: &RpcClient, hash: subxt::utils::H256) -> Result<Option<Vec<Vec<u8>>>, subxt::rpcs::Error> {
    let block: Option<SignedBlock> = rpc.request("chain_getBlock", rpc_params![hash]).await?;
    Ok(block.map(|b| b.block.extrinsics.into_iter().map(|x| x.0).collect()))
}

/// `state_getStorage` at a block: the value, `None` when the key holds nothing.
pub async fn storage(
    rpc: &RpcClient,
    key: &[u8],
    hash: subxt::utils::H256,
) -> Result<Option<Vec<u8>>, subxt::rpcs::Error> {
    let value: Option<HexBytes> = rpc
        .request("state_getStorage", rpc_params![const_hex::encode_prefixed(key), hash])
        .await?;
    Ok(value.map(|v| v.0))
}

/// A block's extrinsics (`None` when the node does not have the block) and its `System.Events` value (empty when
/// it holds none), asked for in parallel.
pub async fn block_and_events(
    rpc: &RpcClient,
    hash: subxt::utils::H256,
) -> Result<(Option<Vec<Vec<u8>>>, Vec<u8>), subxt::rpcs::Error> {
    let events_key = super::keys::system_events();
    let (body, events) = futures_util::try_join!(block_body(rpc, hash), storage(rpc, &events_key, hash))?;
    Ok((body, events.unwrap_or_default()))
}

/// `state_getKeysPaged` at the best block: up to `count` keys under `prefix` after `start`.
pub async fn keys_paged(
    rpc: &RpcClient,
    prefix: &[u8],
    count: u32,
    start: Option<&[u8]>,
) -> Result<Vec<Vec<u8>>, subxt::rpcs::Error> {
    let keys: Vec<HexBytes> = rpc
        .request(
            "state_getKeysPaged",
            rpc_params![
                const_hex::encode_prefixed(prefix),
                count,
                start.map(const_hex::encode_prefixed),
                Option::<subxt::utils::H256>::None
            ],
        )
        .await?;
    Ok(keys.into_iter().map(|k| k.0).collect())
}

#[derive(Deserialize)]
struct ChangeSet {
    changes: Vec<(HexBytes, Option<HexBytes>)>,
}

/// `state_queryStorageAt` at the best block: each key with its value (`None` where it holds nothing), in the
/// node's order.
pub async fn query_storage_at(
    rpc: &RpcClient,
    keys: &[Vec<u8>],
) -> Result<Vec<(Vec<u8>, Option<Vec<u8>>)>, subxt::rpcs::Error> {
    let keys: Vec<String> = keys.iter().map(const_hex::encode_prefixed).collect();
    let sets: Vec<ChangeSet> = rpc
        .request(
            "state_queryStorageAt",
            rpc_params![keys, Option::<subxt::utils::H256>::None],
        )
        .await?;
    Ok(sets
        .into_iter()
        .flat_map(|s| s.changes)
        .map(|(k, v)| (k.0, v.map(|v| v.0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::HexBytes;

    fn parse(json: &str) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::from_str::<HexBytes>(json).map(|h| h.0)
    }

    #[test]
    fn hex_strings_decode_and_bad_ones_are_errors() {
        assert_eq!(parse("\"0x\"").ok(), Some(vec![]));
        assert_eq!(parse("\"0x00ff10Ab\"").ok(), Some(vec![0x00, 0xff, 0x10, 0xab]));
        let long: String = (0..=255u8).map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse(&format!("\"0x{long}\"")).ok(), Some((0..=255u8).collect()));
        for bad in ["\"00ff\"", "\"0x0\"", "\"0xzz\"", "12", "null"] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
