// Child process for crash.test.ts: writes as fast as it can until it is killed, printing one line
//   ack <key> <revision>
// to stdout for every put that has resolved (i.e. was acknowledged as durable). Stdout is a pipe, which
// Node writes synchronously on POSIX, so a printed line is never lost to the kill.
//
// usage: crash-writer.ts <dir> <tag> <inflight> <compactEvery>

import { openEmbeddedStore } from "../index.ts";

const [dir, tag, inflightArg, compactEveryArg] = process.argv.slice(2);
const inflight = Number(inflightArg);
const store = await openEmbeddedStore(dir, { compactEvery: Number(compactEveryArg) });
process.stdout.write(`ready ${store.revision()}\n`);

let next = 0;
async function writer(): Promise<void> {
  for (;;) {
    const i = next++;
    const key = `${tag}/${String(i).padStart(6, "0")}`;
    // Every tenth write is a transaction that also overwrites a shared key, to mix versions in.
    const res =
      i % 10 === 0
        ? await store.txn({
            success: [
              { type: "put", key, value: `v${i}` },
              { type: "put", key: `${tag}/shared`, value: `v${i}` },
            ],
          })
        : await store.put(key, `v${i}`);
    process.stdout.write(`ack ${key} ${res.revision}\n`);
  }
}

await Promise.all(Array.from({ length: inflight }, writer));
