// Memory of the inbound listener under many short-lived mTLS connections: see src/proxy/perf/tls-memory.ts.
import { main } from "../src/proxy/perf/tls-memory.ts";

await main();
