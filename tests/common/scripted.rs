//! A chain whose finalized blocks a test appends as it goes. Its storage holds a `Market.FilesV2` entry for every
//! file ordered and not closed, so Cleanup's check of the chain before a delete sees what a real chain would.

use std::cell::RefCell;

use futures_util::future::LocalBoxFuture;
use smanager::chain::{ChainError, ChainEvent, ChainSource, IndexedBlock};

#[derive(Default)]
pub struct GrowingChain {
    blocks: RefCell<Vec<IndexedBlock>>,
    /// CID → ordered size of files alive on this chain.
    live: RefCell<std::collections::BTreeMap<String, u64>>,
}

impl GrowingChain {
    /// Finalizes a new block with these events; returns its number.
    pub fn push(&self, events: Vec<ChainEvent>) -> u64 {
        for e in &events {
            match e {
                ChainEvent::Ordered(o) => {
                    self.live.borrow_mut().insert(o.cid.clone(), o.size);
                }
                ChainEvent::Closed { cid, .. } => {
                    self.live.borrow_mut().remove(cid);
                }
                ChainEvent::Invalid { .. } | ChainEvent::Refreshed(_) => {}
            }
        }
        let mut b = self.blocks.borrow_mut();
        let n = b.len() as u64 + 1;
        b.push(IndexedBlock {
            number: n,
            hash: format!("0x{n:064x}"),
            timestamp_ms: Some(1_700_000_000_000 + n * 6000),
            events,
        });
        n
    }
}

impl ChainSource for GrowingChain {
    fn finalized_head(&self) -> LocalBoxFuture<'_, Result<u64, ChainError>> {
        let n = self.blocks.borrow().len() as u64;
        Box::pin(async move {
            if n == 0 {
                Err(ChainError::Unavailable("no blocks yet".into()))
            } else {
                Ok(n)
            }
        })
    }
    fn values(&self, keys: Vec<Vec<u8>>) -> LocalBoxFuture<'_, Result<Vec<Option<Vec<u8>>>, ChainError>> {
        use parity_scale_codec::{Compact, Encode};
        let live = self.live.borrow();
        let out = keys
            .iter()
            .map(|k| {
                live.iter()
                    .find(|(cid, _)| smanager::chain::keys::files_v2(cid.as_bytes()) == *k)
                    .map(|(_, size)| {
                        // FileInfoV2: size, spower, expired_at 0 (no replica yet), calculated_at, amount, prepaid,
                        // reported_replica_count, remaining_paid_count, no replicas.
                        let mut v = size.encode();
                        v.extend(0u64.encode());
                        v.extend(0u32.encode());
                        v.extend(1u32.encode());
                        v.extend(Compact(1_000u128).encode());
                        v.extend(Compact(0u128).encode());
                        v.extend(0u32.encode());
                        v.extend(4u32.encode());
                        v.push(0);
                        v
                    })
            })
            .collect();
        Box::pin(async move { Ok(out) })
    }
    fn block(&self, number: u64) -> LocalBoxFuture<'_, Result<IndexedBlock, ChainError>> {
        let b = self.blocks.borrow().get(number as usize - 1).cloned();
        Box::pin(async move { b.ok_or(ChainError::NotFinalized(number)) })
    }
}
