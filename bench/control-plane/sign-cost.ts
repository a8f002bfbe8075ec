// CPU per certificate signature: the CA's signWorkloadCsr on fresh CSRs, one after another and 300 at
// once, in this process (run it pinned, e.g. `taskset -c 0 node bench/control-plane/sign-cost.ts`).
// The figure behind signing's default rate (control-plane/api/signing-limits.ts).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority } from "../../src/pki/ca.ts";
import { generateWorkloadKeyAndCsr } from "../../src/pki/csr.ts";

const dir = mkdtempSync(join(tmpdir(), "weft-sign-cost-"));
try {
  const ca = await CertificateAuthority.loadOrCreate(dir, { trustDomain: "weft.local" });
  const id = "spiffe://weft.local/ns/default/sa/bench";
  const csrs: string[] = [];
  for (let i = 0; i < 300; i++) csrs.push((await generateWorkloadKeyAndCsr(id)).csrPem);
  for (const csr of csrs.slice(0, 50)) await ca.signWorkloadCsr(csr, { spiffeId: id }); // warm-up
  const measure = async (label: string, run: () => Promise<unknown>, n: number) => {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    const cpu = process.cpuUsage(cpu0);
    const ms = (performance.now() - t0) / n;
    const cpuMs = (cpu.user + cpu.system) / 1000 / n;
    console.log(`${label}: ${ms.toFixed(2)} ms wall, ${cpuMs.toFixed(2)} ms CPU per signature`);
  };
  await measure(
    "one after another (250)",
    async () => {
      for (const csr of csrs.slice(50)) await ca.signWorkloadCsr(csr, { spiffeId: id });
    },
    250,
  );
  await measure(
    "300 at once",
    () => Promise.all(csrs.map((c) => ca.signWorkloadCsr(c, { spiffeId: id }))),
    300,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
