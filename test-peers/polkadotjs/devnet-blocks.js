// Reads blocks FROM..TO of a Crust chain with polkadot.js and Crust's type bundle, as an independent decoder: every
// extrinsic, every event with its phase, module errors of failed extrinsics, and the (owner, CID) of every
// Market.FileSuccess. Also derives a multisig account from its signatories the way pallet-multisig does.
// usage: node devnet-blocks.js WS_URL FROM TO SIGNATORY1,SIGNATORY2 THRESHOLD — prints one JSON line.
const { ApiPromise, WsProvider } = require('@polkadot/api');
const { typesBundleForPolkadot } = require('@crustio/type-definitions');
const { createKeyMulti, encodeAddress } = require('@polkadot/util-crypto');

async function main() {
  const [url, from, to, signatories, threshold] = process.argv.slice(2);
  const api = await ApiPromise.create({
    provider: new WsProvider(url),
    typesBundle: typesBundleForPolkadot,
    types: { DispatchErrorModule: 'DispatchErrorModuleU8' },
    throwOnConnect: true,
  });
  await api.isReadyOrError;
  const out = { blocks: [] };
  out.multisig = encodeAddress(createKeyMulti(signatories.split(','), Number(threshold)), 66);
  for (let n = Number(from); n <= Number(to); n++) {
    const hash = await api.rpc.chain.getBlockHash(n);
    const block = await api.rpc.chain.getBlock(hash);
    const at = await api.at(hash);
    const records = await at.query.system.events();
    const b = { number: n, extrinsics: [], events: [], orders: [], failed: [] };
    block.block.extrinsics.forEach((x) => b.extrinsics.push(`${x.method.section}.${x.method.method}`));
    for (const { phase, event } of records) {
      const where = phase.isApplyExtrinsic ? `apply:${phase.asApplyExtrinsic.toNumber()}` : phase.type;
      b.events.push({ name: `${event.section}.${event.method}`, phase: where });
      if (event.section === 'market' && event.method === 'FileSuccess') {
        b.orders.push({ owner: encodeAddress(event.data[0], 66), cid: Buffer.from(event.data[1].toU8a(true)).toString() });
      }
      if (event.section === 'system' && event.method === 'ExtrinsicFailed') {
        const err = event.data[0];
        if (err.isModule) {
          const meta = api.registry.findMetaError(err.asModule);
          b.failed.push(`${meta.section}.${meta.name}`);
        } else {
          b.failed.push(err.type);
        }
      }
    }
    out.blocks.push(b);
  }
  await api.disconnect();
  await new Promise((resolve) => process.stdout.write(JSON.stringify(out) + '\n', resolve));
}

main().then(() => process.exit(0)).catch((e) => { console.error(e); process.exit(1); });
