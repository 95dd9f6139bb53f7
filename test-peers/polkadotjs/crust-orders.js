// Places storage orders on a real Crust runtime under chopsticks with real sr25519-signed extrinsics (polkadot.js
// with Crust's type bundle), in the shapes that matter to an indexer, next to other pallets' extrinsics and a failed
// one; then reads back, as an independent reference, every order the chain accepted and every Market file entry.
// usage: node crust-orders.js WS_URL — prints one JSON line {spec, head, orders: [...], files: {...}, failed,
// sessions: [events of the session-change block], times: {block: its timestamp.set time in ms}}.
const { ApiPromise, WsProvider } = require('@polkadot/api');
const { Keyring } = require('@polkadot/keyring');
const { typesBundleForPolkadot } = require('@crustio/type-definitions');
const { u8aToHex, u8aConcat, stringToU8a, bnToU8a } = require('@polkadot/util');
const { blake2AsU8a, createKeyMulti, sortAddresses } = require('@polkadot/util-crypto');

const CIDS = {
  v0: 'QmYgarKsmU3ZoiZuuRaMse72wNnUKrGs76ufW8Gh5dyjNn',
  b32: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
  b58: 'zdj7WWeQ43G6JJvLWQWZpyHuAMq6uYWRjkBXFad11vE2LHhQ7',
  b16: 'f01701220c3c4733ec8affd06cf9e9ff50ffc6bcd2ec85a6170004bb709669c31de94391a',
  batch: 'QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn',
  twice: 'QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o',
  nested: 'QmZTR5bcpQD7cFgTorqxZDYaew1Wqgfbd2ud9QqGPAkK2V',
  multisig: 'QmPZ9gcCEpqKTo6aq61g2nXGUhM4iCL3ewB6LDXZCtioEB',
  judged: 'QmQPeNsJPyVWPFDVHb9AEPJ2ALbuYLfGS5jamgH23oWJzu',
  bridged: 'QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR',
  interrupted: 'QmaozNR7DZHQK1ZcU9p7QdrshMvXqWK6gpu5rmrkPdT3L4',
};

function u128(n) {
  return bnToU8a(BigInt(n), { bitLength: 128, isLe: true });
}

function u32(n) {
  return bnToU8a(n, { bitLength: 32, isLe: true });
}

async function main() {
  const url = process.argv[2];
  const provider = new WsProvider(url);
  const api = await ApiPromise.create({
    provider,
    typesBundle: typesBundleForPolkadot,
    types: { DispatchErrorModule: 'DispatchErrorModuleU8' },
    throwOnConnect: true,
  });
  await api.isReadyOrError;
  const spec = api.runtimeVersion.specVersion.toNumber();
  const keyring = new Keyring({ type: 'sr25519' });
  const alice = keyring.addFromUri('//Alice');
  const bob = keyring.addFromUri('//Bob');
  const charlie = keyring.addFromUri('//Charlie');

  // Funds, an open market with fees above zero, and the Market pots above the existential deposit.
  const account = (free) => u8aConcat(u32(0), u32(0), u32(1), u128(free), u128(0), u128(0), u128(0));
  const pot = (sub) => {
    const id = new Uint8Array(32);
    id.set(u8aConcat(stringToU8a('modl'), stringToU8a('crmarket'), new Uint8Array([sub.length << 2]), stringToU8a(sub)));
    return id;
  };
  // utility.as_derivative(0) acts as blake2_256("modlpy/utilisuba" ++ Alice ++ 0u16).
  const derivative = blake2AsU8a(u8aConcat(stringToU8a('modlpy/utilisuba'), alice.publicKey, bnToU8a(0, { bitLength: 16, isLe: true })));
  // A 2-of-2 multisig of Alice and Bob (funded below) places an order: Alice approves, Bob executes.
  const multisig = createKeyMulti([alice.address, bob.address], 2);
  const storage = [];
  for (const who of [multisig, derivative, alice.publicKey, bob.publicKey, charlie.publicKey, ...['coll', 'stor', 'stak', 'rese'].map(pot)]) {
    storage.push([api.query.system.account.key(who), u8aToHex(account('1000000000000000000'))]);
  }
  const market = api.query.market;
  if (market.enableMarket) storage.push([market.enableMarket.key(), '0x01']);
  if (market.marketSwitch) storage.push([market.marketSwitch.key(), '0x01']);
  for (const fee of ['fileBaseFee', 'fileByteFee', 'fileKeysCountFee']) {
    if (market[fee]) storage.push([market[fee].key(), u8aToHex(u128(1000))]);
  }
  await provider.send('dev_setStorage', [storage]);
  await provider.send('dev_newBlock', [{ count: 1 }]);

  const nonces = new Map();
  const sign = async (tx, who) => {
    const key = who.address;
    if (!nonces.has(key)) nonces.set(key, (await api.rpc.system.accountNextIndex(key)).toNumber());
    const nonce = nonces.get(key);
    nonces.set(key, nonce + 1);
    const signed = await tx.signAsync(who, { nonce, era: 0 });
    return signed.toHex();
  };
  const order = (cid, size, tips, memo) => {
    const args = api.tx.market.placeStorageOrder.meta.args;
    if (memo && args.length === 3 && api.tx.market.placeStorageOrderWithMemo) {
      return api.tx.market.placeStorageOrderWithMemo(cid, size, tips, memo);
    }
    const values = [cid, size, tips];
    for (let i = 3; i < args.length; i++) values.push(memo || '');
    return api.tx.market.placeStorageOrder(...values);
  };
  // A call that fails with a module error on every spec (Market.FileNotExist), and one of another pallet that works.
  const failing = () => api.tx.market.addPrepaid('QmNotAFileOnThisChainAtAll000000000000000000', 1);
  const other = () => api.tx.system.remark('0x01');
  const block = async (txs) => {
    await provider.send('dev_newBlock', [txs.length ? { count: 1, transactions: txs } : { count: 1 }]);
  };

  await block([
    await sign(order(CIDS.v0, 1000, 3), alice),
    await sign(order(CIDS.b32, 2048, 5, 'memo: hello'), bob),
    await sign(other(), alice),
  ]);
  await block([
    // Two orders on one CID in one batch: two orders with their own size and tips.
    await sign(api.tx.utility.batch([order(CIDS.batch, 1000, 4), order(CIDS.batch, 2000, 9)]), alice),
    // Two identical orders by one account in one block.
    await sign(order(CIDS.twice, 777, 2), bob),
    await sign(order(CIDS.twice, 777, 2), bob),
    // A failed extrinsic next to them: a module error.
    await sign(failing(), charlie),
  ]);
  await block([
    await sign(api.tx.utility.batchAll([order(CIDS.b58, 4096, 1), order(CIDS.b16, 8192, 0)]), charlie),
    // Nested: a batch holding a batch_all with an order.
    await sign(api.tx.utility.batch([api.tx.utility.batchAll([order(CIDS.nested, 300, 6)]), api.tx.system.remark('0x00')]), bob),
    // Interrupted: the second call fails, the order after it never runs.
    await sign(
      api.tx.utility.batch([
        order(CIDS.interrupted, 500, 1),
        failing(),
        order(CIDS.v0, 500, 50),
      ]),
      charlie,
    ),
    // Through a derivative account of Alice's (funded above): the order's owner is that account.
    await sign(api.tx.utility.asDerivative(0, order(CIDS.v0, 1000, 7)), alice),
  ]);
  const sessions = [];
  // An identity judgement in the same block as an order: the registrar's fee is repatriated
  // (Balances.ReserveRepatriated). Bob is made registrar 0 through storage (there is no sudo).
  if (api.tx.identity && api.query.identity.registrars) {
    const registrars = api.createType('Vec<Option<RegistrarInfo>>', [{ account: bob.address, fee: 100, fields: 0 }]);
    await provider.send('dev_setStorage', [[[api.query.identity.registrars.key(), registrars.toHex()]]]);
    await block([
      await sign(api.tx.identity.setIdentity({ display: { Raw: 'alice' } }), alice),
      await sign(api.tx.identity.requestJudgement(0, 100), alice),
    ]);
    await block([
      await sign(api.tx.identity.provideJudgement(0, alice.address, 'Reasonable'), bob),
      await sign(order(CIDS.judged, 900, 4), charlie),
    ]);
    const hash = await api.rpc.chain.getBlockHash();
    for (const { event } of await api.query.system.events.at(hash)) {
      if (event.section === 'balances' || event.section === 'identity') sessions.push(`${event.section}.${event.method}`);
    }
  }
  // A bridge transfer in the same block as an order (ChainBridge.FungibleTransfer): chain 1 whitelisted through
  // storage, with its fee.
  if (api.tx.bridgeTransfer && api.query.chainBridge) {
    const nonces = api.query.chainBridge.chainNonces;
    const fee = api.query.bridgeTransfer.bridgeFee;
    await provider.send('dev_setStorage', [[
      [nonces.key(1), api.createType('Option<u64>', 0).toHex()],
      [fee.key(1), api.createType('(BalanceOf, u32)', [1000, 0]).toHex()],
    ]]);
    await block([
      await sign(api.tx.bridgeTransfer.transferNative(1000000000000, '0x1111111111111111111111111111111111111111', 1), alice),
      await sign(order(CIDS.bridged, 1200, 5), bob),
    ]);
    const hash = await api.rpc.chain.getBlockHash();
    for (const { event } of await api.query.system.events.at(hash)) {
      if (event.section === 'chainBridge') sessions.push(`${event.section}.${event.method}`);
    }
  }
  if (api.tx.multisig) {
    const call = order(CIDS.multisig, 640, 8);
    const others = (who) => sortAddresses([alice.address, bob.address].filter((a) => a !== who.address));
    const args = (who, timepoint, approve) =>
      api.tx.multisig[approve ? 'approveAsMulti' : 'asMulti'].meta.args.map((a) => {
        const name = a.name.toString();
        if (name === 'threshold') return 2;
        if (name === 'other_signatories' || name === 'otherSignatories') return others(who);
        if (name === 'maybe_timepoint' || name === 'maybeTimepoint') return timepoint;
        if (name === 'call') return call.method.toHex();
        if (name === 'call_hash' || name === 'callHash') return call.method.hash;
        if (name === 'store_call' || name === 'storeCall') return false;
        if (name === 'max_weight' || name === 'maxWeight') return 5000000000;
        throw new Error(`multisig argument ${name}`);
      });
    await block([await sign(api.tx.multisig.approveAsMulti(...args(alice, null, true)), alice)]);
    const pending = await api.query.multisig.multisigs(multisig, call.method.hash);
    const when = pending.unwrap().when;
    await block([await sign(api.tx.multisig.asMulti(...args(bob, { height: when.height, index: when.index }, false)), bob)]);
  }
  // A session boundary: Timestamp.Now set so that the next block's BABE slot opens the next epoch. That block is a
  // session change (Session, ImOnline, Grandpa… events); it is full, so orders go in the blocks around it.
  if (api.query.babe && api.query.babe.genesisSlot) {
    const genesisSlot = BigInt((await api.query.babe.genesisSlot()).toString());
    const epoch = BigInt(api.consts.babe.epochDuration.toString());
    const slotMs = BigInt(api.consts.babe.expectedBlockTime.toString());
    const perEra = api.consts.staking && api.consts.staking.sessionsPerEra ? api.consts.staking.sessionsPerEra.toNumber() : 1;
    // Session changes up to the next era (Staking, Grandpa events), orders in a block between two of them.
    for (let i = 0; i < perEra + 1; i++) {
      const epochIndex = BigInt((await api.query.babe.epochIndex()).toString());
      const now = (genesisSlot + (epochIndex + 1n) * epoch - 1n) * slotMs;
      await provider.send('dev_setStorage', [[[api.query.timestamp.now.key(), u8aToHex(bnToU8a(now, { bitLength: 64, isLe: true }))]]]);
      await block([]);
      const hash = await api.rpc.chain.getBlockHash();
      for (const { event } of await api.query.system.events.at(hash)) {
        if (['session', 'imOnline', 'grandpa', 'staking', 'offences'].includes(event.section)) sessions.push(`${event.section}.${event.method}`);
      }
      if (i === 0) await block([await sign(order(CIDS.b58, 4096, 2), alice)]);
    }
  }
  // A CalculateSuccess on a live file, next to an order: the file's expiry is set ahead (as a replica report
  // would have set it), then calculate_reward settles it and the file stays stored (spec 1's Market.Files: expiry
  // at byte 8, calculated_at at 12; spec 25's FilesV2: at 16 and 20).
  {
    const head = (await api.rpc.chain.getHeader()).number.toNumber();
    const key = market.filesV2 ? market.filesV2.key(CIDS.nested) : market.files.key(CIDS.nested);
    const raw = Buffer.from((await provider.send('state_getStorage', [key])).slice(2), 'hex');
    const at = market.filesV2 ? 16 : 8;
    raw.writeUInt32LE(head + 1000, at);
    raw.writeUInt32LE(head, at + 4);
    await provider.send('dev_setStorage', [[[key, '0x' + raw.toString('hex')]]]);
    await block([
      await sign(api.tx.market.calculateReward(CIDS.nested), charlie),
      await sign(order(CIDS.b32, 2048, 11), charlie),
    ]);
    const hash = await api.rpc.chain.getBlockHash();
    for (const { event } of await api.query.system.events.at(hash)) {
      if (event.section === 'market' && event.method !== 'FileSuccess') sessions.push(`${event.section}.${event.method}`);
      if (event.section === 'system' && event.method === 'ExtrinsicFailed') throw new Error(`calculate_reward failed: ${event.data[0]}`);
    }
    const still = await provider.send('state_getStorage', [key]);
    if (!still) throw new Error('calculate_reward closed the live file');
  }
  await block([]);

  // The reference: every FileSuccess with the order it belongs to, read with polkadot.js.
  const head = (await api.rpc.chain.getHeader()).number.toNumber();
  const orders = [];
  const times = {};
  let failed = 0;
  for (let n = 1; n <= head; n++) {
    const hash = await api.rpc.chain.getBlockHash(n);
    const signed = await api.rpc.chain.getBlock(hash);
    // The block's time as its timestamp.set inherent gives it (Timestamp.Now is overwritten in place above, so
    // the storage is no reference for the session blocks).
    for (const ext of signed.block.extrinsics) {
      if (ext.method.section === 'timestamp' && ext.method.method === 'set') times[n] = ext.method.args[0].toString();
    }
    const events = await api.query.system.events.at(hash);
    const used = new Map();
    for (const { event, phase } of events) {
      if (event.section === 'system' && event.method === 'ExtrinsicFailed') failed++;
      if (event.section !== 'market' || event.method !== 'FileSuccess') continue;
      const index = phase.asApplyExtrinsic.toNumber();
      const ext = signed.block.extrinsics[index];
      const placed = [];
      const walk = (call) => {
        if (call.section === 'market' && call.method.startsWith('placeStorageOrder')) {
          placed.push({ cid: Buffer.from(call.args[0].toU8a(true)).toString(), size: call.args[1].toString(), tips: call.args[2].toString() });
        } else {
          for (const a of call.args) {
            // Multisig carries its call as opaque bytes.
            if (call.section === 'multisig' && a.toRawType && ['OpaqueCall', 'Bytes', 'Vec<u8>'].includes(a.toRawType())) {
              walk(api.createType('Call', a.toU8a(true)));
              continue;
            }
            if (a.toRawType && a.toRawType() === 'Call') walk(a);
            if (Array.isArray(a)) a.forEach((c) => c.section && walk(c));
            if (a.toArray && a.toRawType().startsWith('Vec<Call')) a.toArray().forEach(walk);
          }
        }
      };
      walk(api.createType('Call', ext.method));
      const cid = Buffer.from(event.data[1].toU8a(true)).toString();
      const k = `${index}/${cid}`;
      const nth = used.get(k) || 0;
      used.set(k, nth + 1);
      const mine = placed.filter((p) => p.cid === cid);
      const hit = mine[nth] || mine[mine.length - 1];
      orders.push({ block: n, cid, owner: event.data[0].toString(), size: hit ? hit.size : null, tips: hit ? hit.tips : null });
    }
  }
  const files = {};
  if (market.filesV2) {
    for (const [key, value] of await market.filesV2.entries()) {
      const info = value.isSome ? value.unwrap() : value;
      files[Buffer.from(key.args[0].toU8a(true)).toString()] = {
        size: info.file_size.toString(),
        expired_at: info.expired_at.toString(),
        amount: info.amount.toString(),
        replicas: info.reported_replica_count.toString(),
      };
    }
  } else {
    // Spec 1's `Market.Files` value is (FileInfo, UsedInfo), and Crust's bundle has no UsedInfo: keys are read with
    // polkadot.js, the value's leading FileInfo fields from the raw bytes (file_size u64, expired_on u32,
    // calculated_at u32, amount u128, prepaid u128, reported_replica_count u32).
    for (const key of await market.files.keys()) {
      const raw = Buffer.from((await provider.send('state_getStorage', [key.toHex()])).slice(2), 'hex');
      files[Buffer.from(key.args[0].toU8a(true)).toString()] = {
        size: raw.readBigUInt64LE(0).toString(),
        expired_at: raw.readUInt32LE(8).toString(),
        amount: (raw.readBigUInt64LE(16) + (raw.readBigUInt64LE(24) << 64n)).toString(),
        replicas: raw.readUInt32LE(48).toString(),
      };
    }
  }
  await api.disconnect();
  const out = { spec, head, orders, files, failed, sessions, times };
  await new Promise((resolve) => process.stdout.write(JSON.stringify(out) + '\n', resolve));
}

main().then(() => process.exit(0)).catch((e) => { console.error(e); process.exit(1); });
