//! A chain whose finalized blocks a test appends as it goes.

use std::cell::RefCell;

use futures_util::future::LocalBoxFuture;
use smanager::chain::{ChainError, ChainEvent, ChainSource, IndexedBlock};

#[derive(Default)]
pub struct GrowingChain {
    blocks: RefCell<Vec<IndexedBlock>>,
}

impl GrowingChain {
    /// Finalizes a new block with these events; returns its number.
    pub fn push(&self, events: Vec<ChainEvent>) -> u64 {
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
    fn block(&self, number: u64) -> LocalBoxFuture<'_, Result<IndexedBlock, ChainError>> {
        let b = self.blocks.borrow().get(number as usize - 1).cloned();
        Box::pin(async move { b.ok_or(ChainError::NotFinalized(number)) })
    }
}
