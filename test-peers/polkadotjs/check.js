// Connects to a Crust node (the devnet chain) the way the TypeScript manager, crust.js and Crust Apps do:
// polkadot.js with @crustio/type-definitions. Prints one JSON line with what it read; exits non-zero on failure.
const { ApiPromise, WsProvider } = require('@polkadot/api');
const { typesBundleForPolkadot } = require('@crustio/type-definitions');

async function main() {
  const url = process.argv[2];
  const api = await ApiPromise.create({ provider: new WsProvider(url), typesBundle: typesBundleForPolkadot, throwOnConnect: true });
  await api.isReadyOrError;
  const out = { chain: (await api.rpc.system.chain()).toString(), spec: api.runtimeVersion.specVersion.toNumber() };
  out.metadataVersion = api.runtimeMetadata.version;
  const entries = await api.query.market.filesV2.entries();
  out.files = entries.length;
  const [key, value] = entries[0];
  const info = value.unwrap ? value.unwrap() : value;
  out.sample = { cid: Buffer.from(key.args[0].toU8a(true)).toString(), fileSize: info.file_size.toNumber(), replicas: info.reported_replica_count.toNumber() };
  const events = await api.query.system.events();
  out.events = events.map((e) => `${e.event.section}.${e.event.method}`);
  const me = process.argv[3];
  const identity = await api.query.swork.identities(me);
  out.group = identity.isSome ? identity.unwrap().group.toString() : null;
  await api.disconnect();
  await new Promise((resolve) => process.stdout.write(JSON.stringify(out) + '\n', resolve));
}

main().then(() => process.exit(0)).catch((e) => { console.error(e); process.exit(1); });
