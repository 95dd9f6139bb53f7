//! The devnet's scenario, deterministic from a seed: orders of mixed sizes and tips (CIDv0 and CIDv1, some inside
//! `utility.batch`, some repeating an existing CID, a few for content nobody has), replicas over time, and files
//! closed through `calculate_reward` (`CalculateSuccess` + `FileClosed`) or `IllegalFileClosed`, amid what real Crust
//! blocks carry (`Scenario::chain_life`: session and era changes, transfers, bonds, judgements, bridge transfers,
//! multisig orders, failed extrinsics, repeat orders in one extrinsic and one block). It records the ground truth so
//! tests can compare an indexer against it.

use std::collections::BTreeMap;
use std::sync::Arc;

use parity_scale_codec::{Compact, Encode};
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::metadata;
use super::types::{self, AccountId, FileInfoV2};
use super::{account, ChainState, GroupSpec};
use crate::chain::ss58;
use crate::devnet::ContentSource;

/// `(reporter, owner, anchor, report slot, report block, valid at, is_added)` of `market.update_replicas`.
type ReplicaUpdate = (AccountId, AccountId, Vec<u8>, u64, u32, u32, bool);
/// `(cid, file size, replica updates)` of `market.update_replicas`.
type FileReplicas = (Vec<u8>, u64, Vec<ReplicaUpdate>);

/// Accounts that place orders.
pub const USERS: [&str; 5] = ["alice", "bob", "charlie", "dave", "eve"];

/// Scenario knobs.
#[derive(Debug, Clone)]
pub struct ScenarioConfig {
    pub seed: u64,
    /// Orders per block on average (0 = none).
    pub order_rate: f64,
    /// Share of new CIDs nobody can provide (pin/add stalls).
    pub unavailable_share: f64,
    /// A file is closed this many blocks after its order, for a share `close_share` of files.
    pub close_after_blocks: u32,
    pub close_share: f64,
    /// Largest order size in bytes.
    pub max_size: u64,
}

impl Default for ScenarioConfig {
    fn default() -> Self {
        ScenarioConfig {
            seed: 1,
            order_rate: 1.0,
            unavailable_share: 0.05,
            close_after_blocks: 8,
            close_share: 0.3,
            max_size: 4 * 1024 * 1024,
        }
    }
}

/// One order as placed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OrderTruth {
    pub cid: String,
    pub size: u64,
    pub tips: u128,
    pub owner: String,
    pub block: u32,
    pub in_batch: bool,
    pub available: bool,
}

/// One close as it happened.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CloseTruth {
    pub cid: String,
    pub block: u32,
    pub illegal: bool,
}

/// What the scenario did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GroundTruth {
    pub orders: Vec<OrderTruth>,
    pub closes: Vec<CloseTruth>,
    pub replicas_added: u64,
}

/// The scenario's state between blocks.
#[derive(Default)]
pub struct Scenario {
    pub cfg: Option<ScenarioConfig>,
    pub content: Option<Arc<dyn ContentSource>>,
    pub group: Option<GroupSpec>,
    pub truth: GroundTruth,
    /// Orders tests asked for, placed in the next block.
    pub manual: Vec<(String, u64, u128)>,
    /// Closes tests asked for, applied in the next block.
    pub manual_closes: Vec<(String, bool)>,
    /// Orders with arbitrary MerkleRoot bytes (bad input), placed in the next block.
    pub raw_orders: Vec<(Vec<u8>, u64)>,
    /// Put an undecodable extrinsic into the next block.
    pub garbage: bool,
    /// Orders tests asked for inside one `utility.batch` (by alice), placed in the next block.
    pub manual_batches: Vec<Vec<(String, u64, u128)>>,
    /// Orders whose call the indexer cannot see (the place call travels as opaque bytes, as through
    /// `multisig.as_multi`'s `OpaqueCall`): only the FileSuccess event and the storage entry tell of them.
    pub opaque_orders: Vec<(String, u64)>,
    /// Renewals tests asked for (CID, blocks added to its expiry), applied in the next block through
    /// `calculate_reward` as the pallet renews from the prepaid pool: `RenewFileSuccess`.
    pub renewals: Vec<(String, u32)>,
    /// A multisig order approved by its first signatory, executed by the second in the next block.
    pending_multisig: Option<PendingMultisig>,
    next_file: u64,
}

/// `(cid, size, tips, timepoint of the approval)` of a 2-of-2 multisig order between alice and bob.
#[derive(Clone)]
struct PendingMultisig {
    cid: String,
    size: u64,
    tips: u128,
    height: u32,
    index: u32,
}

/// Session length of the devnet in blocks; every third session starts an era.
pub const SESSION_BLOCKS: u32 = 20;

/// The account of a multisig, as pallet-multisig derives it from the sorted signatories and the threshold.
pub fn multisig_account(signatories: &[AccountId], threshold: u16) -> AccountId {
    let mut who = signatories.to_vec();
    who.sort();
    sp_crypto_hashing::blake2_256(&(b"modlpy/utilisuba", who, threshold).encode())
}

/// A call's first two bytes, by name, at the devnet's spec.
fn call(spec: u32, pallet: &str, name: &str) -> Vec<u8> {
    metadata::call_index(spec, pallet, name).to_vec()
}

/// An event with its SCALE-encoded arguments, by name, at the devnet's spec.
fn ev(spec: u32, pallet: &str, name: &str, args: Vec<u8>) -> (u8, u8, Vec<u8>) {
    let (p, e) = metadata::event_index(spec, pallet, name);
    (p, e, args)
}

fn place_call(spec: u32, cid: &str, size: u64, tips: u128) -> Vec<u8> {
    let mut c = call(spec, "Market", "place_storage_order");
    cid.as_bytes().to_vec().encode_to(&mut c);
    size.encode_to(&mut c);
    Compact(tips).encode_to(&mut c);
    Vec::<u8>::new().encode_to(&mut c);
    c
}

fn file_success(spec: u32, owner: &AccountId, cid: &str) -> (u8, u8, Vec<u8>) {
    let mut a = owner.to_vec();
    cid.as_bytes().to_vec().encode_to(&mut a);
    ev(spec, "Market", "FileSuccess", a)
}

impl Scenario {
    /// A generator whose every choice comes from the seed, so runs repeat exactly.
    pub fn new(cfg: ScenarioConfig, content: Arc<dyn ContentSource>, group: GroupSpec) -> Self {
        Scenario {
            cfg: Some(cfg),
            content: Some(content),
            group: Some(group),
            ..Default::default()
        }
    }

    /// Applies an order to FilesV2 as the pallet would (new file, or more amount on an existing one).
    fn apply_order(st: &mut ChainState, cid: &str, size: u64, amount: u128, now: u32) {
        let info = match st.files.get(cid).cloned() {
            Some(mut f) => {
                f.amount += amount;
                if !f.replicas.is_empty() {
                    f.expired_at = now + super::FILE_DURATION;
                }
                f
            }
            None => FileInfoV2 {
                file_size: size,
                spower: 0,
                expired_at: 0,
                calculated_at: now,
                amount,
                prepaid: 0,
                reported_replica_count: 0,
                remaining_paid_count: 4,
                replicas: BTreeMap::new(),
            },
        };
        st.put_file(cid, info);
    }

    /// Runs the scenario for block `now` (its extrinsics are queued on `st`).
    pub fn on_block(&mut self, st: &mut ChainState, now: u32) {
        let (Some(cfg), Some(content), Some(group)) = (self.cfg.clone(), self.content.clone(), self.group.clone())
        else {
            self.apply_manual(st, now);
            return;
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed.wrapping_mul(1_000_003) ^ u64::from(now));
        // The rest of a real block (other pallets, failures, repeats) draws from its own stream, so the orders
        // stay what they were for a seed.
        let mut life = rand::rngs::StdRng::seed_from_u64(cfg.seed.wrapping_mul(7_368_787) ^ u64::from(now) ^ 0x11fe);
        self.apply_manual(st, now);

        // Orders.
        let whole = cfg.order_rate.floor() as u64;
        let count = whole + u64::from(rng.gen_bool((cfg.order_rate - whole as f64).clamp(0.0, 1.0)));
        let mut batch: Vec<(AccountId, String, u64, u128)> = Vec::new();
        let start = self.truth.orders.len();
        for _ in 0..count {
            let user = USERS[rng.gen_range(0..USERS.len())];
            let who = account(user);
            let tips: u128 = rng.gen_range(0..5_000_000_000u128);
            // A repeat order picks an earlier order whose file is still live (cheap with millions of files).
            let earlier = if !self.truth.orders.is_empty() && rng.gen_bool(0.1) {
                let o = &self.truth.orders[rng.gen_range(0..self.truth.orders.len())];
                st.files.get(&o.cid).map(|f| (o.cid.clone(), f.file_size, o.available))
            } else {
                None
            };
            let (cid, size, available) = if let Some(e) = earlier {
                e
            } else {
                let max = cfg.max_size.max(1_001);
                let small = (512 * 1024).min(max);
                let size = match rng.gen_range(0..100) {
                    0..=69 => rng.gen_range(1_000..=small),
                    70..=94 => rng.gen_range(small..=(2 * 1024 * 1024).min(max)),
                    _ => rng.gen_range(1_000..=max),
                };
                let available = !rng.gen_bool(cfg.unavailable_share.clamp(0.0, 1.0));
                self.next_file += 1;
                let cid = content.create(
                    cfg.seed.wrapping_mul(7919) + self.next_file,
                    size,
                    rng.gen_bool(0.3),
                    available,
                );
                (cid, size, available)
            };
            let in_batch = rng.gen_bool(0.15);
            self.truth.orders.push(OrderTruth {
                cid: cid.clone(),
                size,
                tips,
                owner: ss58::encode(ss58::CRUST_PREFIX, &who),
                block: now,
                in_batch,
                available,
            });
            Self::apply_order(st, &cid, size, 1_000_000 + tips, now);
            if in_batch {
                batch.push((who, cid, size, tips));
            } else {
                st.submit(
                    &who,
                    place_call(st.spec, &cid, size, tips),
                    vec![file_success(st.spec, &who, &cid)],
                );
                if life.gen_bool(0.03) {
                    // The same order twice from one account in one block: two orders, both counted.
                    let again = self.truth.orders[self.truth.orders.len() - 1].clone();
                    self.truth.orders.push(again);
                    Self::apply_order(st, &cid, size, 1_000_000 + tips, now);
                    st.submit(
                        &who,
                        place_call(st.spec, &cid, size, tips),
                        vec![file_success(st.spec, &who, &cid)],
                    );
                }
            }
        }
        if !batch.is_empty() {
            // One signer per batch: the first order's; the others are re-attributed to it.
            let who = batch[0].0;
            let first = start;
            if life.gen_bool(0.3) {
                // A second order on the batch's first CID inside the same batch, with its own tips.
                let (_, cid, size, _) = batch[0].clone();
                let tips = life.gen_range(0..5_000_000_000u128);
                let mut again = self.truth.orders[first..]
                    .iter()
                    .find(|o| o.in_batch)
                    .cloned()
                    .expect("a batch holds an order");
                again.tips = tips;
                self.truth.orders.push(again);
                Self::apply_order(st, &cid, size, 1_000_000 + tips, now);
                batch.push((who, cid, size, tips));
            }
            let mut call = call(
                st.spec,
                "Utility",
                if rng.gen_bool(0.5) { "batch" } else { "batch_all" },
            );
            Compact(batch.len() as u32).encode_to(&mut call);
            let mut events = Vec::new();
            for (_, cid, size, tips) in &batch {
                call.extend(place_call(st.spec, cid, *size, *tips));
                events.push(file_success(st.spec, &who, cid));
            }
            events.push(ev(st.spec, "Utility", "BatchCompleted", vec![]));
            let owner = ss58::encode(ss58::CRUST_PREFIX, &who);
            for o in self.truth.orders[first..].iter_mut().filter(|o| o.in_batch) {
                o.owner = owner.clone();
            }
            st.submit(&who, call, events);
        }
        self.chain_life(st, now, &mut life, &*content);

        // Replicas: files ordered a few blocks ago get one from the group (the spower superior reports them).
        let superior = account("superior");
        let mut updates = Vec::new();
        let replicating: Vec<String> = if now >= 3 {
            self.orders_of_block(now - 3)
                .iter()
                .filter(|o| o.available)
                .map(|o| o.cid.clone())
                .collect()
        } else {
            Vec::new()
        };
        for cid in replicating {
            if st.add_replica(&cid, &group.owner, &group.members[0], now) {
                self.truth.replicas_added += 1;
                updates.push(cid);
            }
        }
        // Closes: a share of files close `close_after_blocks` after their order; a few of the unreplicated ones
        // are closed as illegal.
        let mut closing: Vec<(String, bool)> = Vec::new();
        let due = now.checked_sub(cfg.close_after_blocks);
        for o in due
            .map_or(&[][..], |b| self.orders_of_block(b))
            .iter()
            .filter(|o| !o.in_batch)
        {
            if st.files.contains_key(&o.cid) && rng.gen_bool(cfg.close_share.clamp(0.0, 1.0)) {
                let illegal = st.files.get(&o.cid).is_some_and(|f| f.replicas.is_empty());
                closing.push((o.cid.clone(), illegal));
            }
        }
        if !updates.is_empty() || closing.iter().any(|(_, illegal)| *illegal) {
            let mut call = call(st.spec, "Market", "update_replicas");
            let infos: Vec<FileReplicas> = updates
                .iter()
                .map(|cid| {
                    let size = st.files.get(cid).map_or(0, |f| f.file_size);
                    (
                        cid.as_bytes().to_vec(),
                        size,
                        vec![(group.members[0], group.owner, vec![0u8; 64], 0u64, now, now, true)],
                    )
                })
                .collect();
            infos.encode_to(&mut call);
            now.encode_to(&mut call);
            let mut events = Vec::new();
            for (cid, _) in closing.iter().filter(|(_, illegal)| *illegal) {
                events.push(ev(
                    st.spec,
                    "Market",
                    "IllegalFileClosed",
                    cid.as_bytes().to_vec().encode(),
                ));
            }
            let mut ok = superior.to_vec();
            now.encode_to(&mut ok);
            (updates.len() as u32).encode_to(&mut ok);
            now.encode_to(&mut ok);
            events.push(ev(st.spec, "Market", "UpdateReplicasSuccess", ok));
            st.submit(&superior, call, events);
        }
        for (cid, illegal) in closing {
            self.close(st, &cid, illegal, now);
        }
    }

    /// What else real Crust blocks carry, in the same blocks as the orders: session and era changes (ImOnline,
    /// Offences, Session, Staking, Grandpa), transfers, bonds, identity judgements, bridge transfers, failed
    /// extrinsics with module errors, and orders placed through a 2-of-2 multisig.
    fn chain_life(
        &mut self,
        st: &mut ChainState,
        now: u32,
        life: &mut rand::rngs::StdRng,
        content: &dyn ContentSource,
    ) {
        let spec = st.spec;
        let users: Vec<AccountId> = USERS.iter().map(|u| account(u)).collect();
        let pick = |life: &mut rand::rngs::StdRng| users[life.gen_range(0..users.len())];
        if now % SESSION_BLOCKS == 0 {
            let session = now / SESSION_BLOCKS;
            let validator = account("validator-2");
            // (validator, Exposure { total, own, others }) of the validator that missed its heartbeat.
            let mut offline = Compact(1u32).encode();
            validator.encode_to(&mut offline);
            Compact(2_000_000_000_000u128).encode_to(&mut offline);
            Compact(1_500_000_000_000u128).encode_to(&mut offline);
            vec![(users[0], Compact(500_000_000_000u128))].encode_to(&mut offline);
            st.on_initialize_event(ev(spec, "ImOnline", "SomeOffline", offline));
            let mut args = b"im-online:offlin".to_vec();
            session.encode().encode_to(&mut args);
            false.encode_to(&mut args);
            st.on_initialize_event(ev(spec, "Offences", "Offence", args));
            if session % 3 == 0 {
                let mut args = (session / 3).encode();
                1_000_000_000_000u128.encode_to(&mut args);
                0u128.encode_to(&mut args);
                st.on_initialize_event(ev(spec, "Staking", "EraReward", args));
            }
            st.on_initialize_event(ev(spec, "Session", "NewSession", session.encode()));
            let authorities = vec![(account("validator-1"), 1u64), (account("validator-2"), 1u64)];
            st.on_finalize_event(ev(spec, "Grandpa", "NewAuthorities", authorities.encode()));
        }
        if life.gen_bool(0.2) {
            let (from, to) = (pick(life), pick(life));
            let value: u128 = life.gen_range(1..1_000_000_000_000);
            let mut c = call(spec, "Balances", "transfer");
            to.encode_to(&mut c);
            Compact(value).encode_to(&mut c);
            st.submit(
                &from,
                c,
                vec![ev(spec, "Balances", "Transfer", (from, to, value).encode())],
            );
        }
        if life.gen_bool(0.05) {
            let stash = pick(life);
            let value: u128 = life.gen_range(1..1_000_000_000_000);
            let mut c = call(spec, "Staking", "bond");
            stash.encode_to(&mut c);
            Compact(value).encode_to(&mut c);
            st.submit(&stash, c, vec![ev(spec, "Staking", "Bonded", (stash, value).encode())]);
        }
        if now % SESSION_BLOCKS == 1 || life.gen_bool(0.03) {
            // A validator rotates its four session keys (grandpa, babe, im_online, authority_discovery) after a
            // session change, or at any time: no event.
            let validator = account("validator-1");
            let mut c = call(spec, "Session", "set_keys");
            for k in 0..4u8 {
                c.extend_from_slice(&sp_crypto_hashing::blake2_256(
                    &[now.to_le_bytes().as_slice(), &[k]].concat(),
                ));
            }
            Vec::<u8>::new().encode_to(&mut c);
            st.submit(&validator, c, vec![]);
        }
        if life.gen_bool(0.05) {
            // A registrar judges an identity: its fee moves from the target's reserve to the registrar.
            let (registrar, target) = (account("ferdie"), pick(life));
            let fee: u128 = 10_000_000_000;
            let mut c = call(spec, "Identity", "provide_judgement");
            Compact(0u32).encode_to(&mut c);
            target.encode_to(&mut c);
            c.push(3); // Judgement::KnownGood
            let mut repatriated = (target, registrar, fee).encode();
            repatriated.push(0); // BalanceStatus::Free
            st.submit(
                &registrar,
                c,
                vec![
                    ev(spec, "Balances", "ReserveRepatriated", repatriated),
                    ev(spec, "Identity", "JudgementGiven", (target, 0u32).encode()),
                ],
            );
        }
        if life.gen_bool(0.05) {
            let who = pick(life);
            let amount: u128 = life.gen_range(1..1_000_000_000_000);
            let recipient = b"0x52a4d2e3f1b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9".to_vec();
            let mut c = call(spec, "BridgeTransfer", "transfer_native");
            amount.encode_to(&mut c);
            recipient.encode_to(&mut c);
            2u8.encode_to(&mut c);
            let bridge = account("chainbridge");
            let mut u256 = [0u8; 32];
            u256[..16].copy_from_slice(&amount.to_le_bytes());
            let fungible = (2u8, u64::from(now), [7u8; 32], u256, recipient).encode();
            st.submit(
                &who,
                c,
                vec![
                    ev(spec, "Balances", "Transfer", (who, bridge, amount).encode()),
                    ev(spec, "ChainBridge", "FungibleTransfer", fungible),
                ],
            );
        }
        if life.gen_bool(0.1) {
            // Failed extrinsics: the runtime drops their events and records the module error; no order is made.
            let who = pick(life);
            let missing = format!("QmDevnetNeverStored{now:08}xxxxxxxxxxxxxxxxxxxxxxxxxx");
            if life.gen_bool(0.5) {
                let mut c = call(spec, "Market", "add_prepaid");
                missing.as_bytes().to_vec().encode_to(&mut c);
                Compact(1_000_000u128).encode_to(&mut c);
                let (p, e) = metadata::error_index(spec, "Market", "FileNotExist");
                st.submit_failing(&who, c, types::module_error(p, e));
            } else {
                let too_large = 8_589_934_592u64 + 1;
                let c = place_call(spec, &missing, too_large, 0);
                let (p, e) = metadata::error_index(spec, "Market", "FileTooLarge");
                st.submit_failing(&who, c, types::module_error(p, e));
            }
        }
        let (alice, bob) = (account("alice"), account("bob"));
        let multi = multisig_account(&[alice, bob], 2);
        if let Some(p) = self.pending_multisig.take() {
            // bob completes the multisig: the order runs as the multisig account, inside `as_multi`'s opaque call.
            let inner = place_call(spec, &p.cid, p.size, p.tips);
            let mut c = call(spec, "Multisig", "as_multi");
            2u16.encode_to(&mut c);
            vec![alice].encode_to(&mut c);
            Some((p.height, p.index)).encode_to(&mut c);
            inner.encode_to(&mut c);
            false.encode_to(&mut c);
            1_000_000_000u64.encode_to(&mut c);
            let hash = sp_crypto_hashing::blake2_256(&inner);
            let mut executed = bob.encode();
            (p.height, p.index).encode_to(&mut executed);
            multi.encode_to(&mut executed);
            hash.encode_to(&mut executed);
            executed.push(0); // Ok(())
            self.truth.orders.push(OrderTruth {
                cid: p.cid.clone(),
                size: p.size,
                tips: p.tips,
                owner: ss58::encode(ss58::CRUST_PREFIX, &multi),
                block: now,
                in_batch: false,
                available: true,
            });
            Self::apply_order(st, &p.cid, p.size, 1_000_000 + p.tips, now);
            st.submit(
                &bob,
                c,
                vec![
                    file_success(spec, &multi, &p.cid),
                    ev(spec, "Multisig", "MultisigExecuted", executed),
                ],
            );
        } else if life.gen_bool(0.05) {
            let Some(cfg) = self.cfg.clone() else { return };
            self.next_file += 1;
            let size: u64 = life.gen_range(1_000..=(256 * 1024).min(cfg.max_size.max(1_001)));
            let cid = content.create(cfg.seed.wrapping_mul(7919) + self.next_file, size, false, true);
            let tips: u128 = life.gen_range(0..5_000_000_000u128);
            let inner = place_call(spec, &cid, size, tips);
            let hash = sp_crypto_hashing::blake2_256(&inner);
            let mut c = call(spec, "Multisig", "approve_as_multi");
            2u16.encode_to(&mut c);
            vec![bob].encode_to(&mut c);
            None::<(u32, u32)>.encode_to(&mut c);
            hash.encode_to(&mut c);
            1_000_000_000u64.encode_to(&mut c);
            // The approval's timepoint: this block, at the extrinsic index it is about to take.
            let index = st.queued_len() as u32 + 1;
            st.submit(
                &alice,
                c,
                vec![ev(spec, "Multisig", "NewMultisig", (alice, multi, hash).encode())],
            );
            self.pending_multisig = Some(PendingMultisig {
                cid,
                size,
                tips,
                height: now,
                index,
            });
        }
    }

    /// Orders placed in `block` (orders are recorded in block order).
    fn orders_of_block(&self, block: u32) -> &[OrderTruth] {
        let lo = self.truth.orders.partition_point(|o| o.block < block);
        let hi = self.truth.orders.partition_point(|o| o.block <= block);
        &self.truth.orders[lo..hi]
    }

    fn close(&mut self, st: &mut ChainState, cid: &str, illegal: bool, now: u32) {
        if !st.files.contains_key(cid) {
            return;
        }
        st.remove_file(cid);
        self.truth.closes.push(CloseTruth {
            cid: cid.to_string(),
            block: now,
            illegal,
        });
        if !illegal {
            // calculate_reward after expiry: the file is removed, FileClosed then CalculateSuccess.
            let caller = account("eve");
            let mut call = call(st.spec, "Market", "calculate_reward");
            cid.as_bytes().to_vec().encode_to(&mut call);
            let arg = cid.as_bytes().to_vec().encode();
            st.submit(
                &caller,
                call,
                vec![
                    ev(st.spec, "Market", "FileClosed", arg.clone()),
                    ev(st.spec, "Market", "CalculateSuccess", arg),
                ],
            );
        }
    }

    fn apply_manual(&mut self, st: &mut ChainState, now: u32) {
        for (raw, size) in std::mem::take(&mut self.raw_orders) {
            let who = account("mallory");
            let mut call = call(st.spec, "Market", "place_storage_order");
            raw.encode_to(&mut call);
            size.encode_to(&mut call);
            Compact(0u128).encode_to(&mut call);
            Vec::<u8>::new().encode_to(&mut call);
            let mut args = who.to_vec();
            raw.encode_to(&mut args);
            st.submit(&who, call, vec![ev(st.spec, "Market", "FileSuccess", args)]);
        }
        if std::mem::take(&mut self.garbage) {
            st.submit_raw(vec![0xde, 0xad, 0xbe, 0xef, 0xff].encode());
        }
        for (cid, size, tips) in std::mem::take(&mut self.manual) {
            let who = account("alice");
            self.truth.orders.push(OrderTruth {
                cid: cid.clone(),
                size,
                tips,
                owner: ss58::encode(ss58::CRUST_PREFIX, &who),
                block: now,
                in_batch: false,
                available: true,
            });
            Self::apply_order(st, &cid, size, 1_000_000 + tips, now);
            st.submit(
                &who,
                place_call(st.spec, &cid, size, tips),
                vec![file_success(st.spec, &who, &cid)],
            );
        }
        for orders in std::mem::take(&mut self.manual_batches) {
            let who = account("alice");
            let mut call = call(st.spec, "Utility", "batch");
            Compact(orders.len() as u32).encode_to(&mut call);
            let mut events = Vec::new();
            for (cid, size, tips) in &orders {
                self.truth.orders.push(OrderTruth {
                    cid: cid.clone(),
                    size: *size,
                    tips: *tips,
                    owner: ss58::encode(ss58::CRUST_PREFIX, &who),
                    block: now,
                    in_batch: true,
                    available: true,
                });
                Self::apply_order(st, cid, *size, 1_000_000 + tips, now);
                call.extend(place_call(st.spec, cid, *size, *tips));
                events.push(file_success(st.spec, &who, cid));
            }
            events.push(ev(st.spec, "Utility", "BatchCompleted", vec![]));
            st.submit(&who, call, events);
        }
        for (cid, size) in std::mem::take(&mut self.opaque_orders) {
            let who = account("alice");
            Self::apply_order(st, &cid, size, 1_000_000, now);
            let mut call = call(st.spec, "System", "remark");
            place_call(st.spec, &cid, size, 0).encode_to(&mut call);
            st.submit(&who, call, vec![file_success(st.spec, &who, &cid)]);
        }
        for (cid, extra) in std::mem::take(&mut self.renewals) {
            let Some(mut f) = st.files.get(&cid).cloned() else {
                continue;
            };
            f.expired_at = f.expired_at.max(now) + extra;
            f.amount += 5_000_000;
            f.prepaid = f.prepaid.saturating_sub(5_000_000);
            st.put_file(&cid, f);
            let caller = account("eve");
            let mut call = call(st.spec, "Market", "calculate_reward");
            cid.as_bytes().to_vec().encode_to(&mut call);
            let mut renewed = caller.to_vec();
            cid.as_bytes().to_vec().encode_to(&mut renewed);
            st.submit(&caller, call, vec![ev(st.spec, "Market", "RenewFileSuccess", renewed)]);
        }
        for (cid, illegal) in std::mem::take(&mut self.manual_closes) {
            if illegal {
                let superior = account("superior");
                let mut call = call(st.spec, "Market", "update_replicas");
                Vec::<(Vec<u8>, u64, Vec<(AccountId, AccountId, Vec<u8>, u64, u32, u32, bool)>)>::new()
                    .encode_to(&mut call);
                now.encode_to(&mut call);
                st.submit(
                    &superior,
                    call,
                    vec![ev(
                        st.spec,
                        "Market",
                        "IllegalFileClosed",
                        cid.as_bytes().to_vec().encode(),
                    )],
                );
            }
            self.close(st, &cid, illegal, now);
        }
    }
}
