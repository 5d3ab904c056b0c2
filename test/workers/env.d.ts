import type { D1Migration } from "cloudflare:test";
import type { AuditLedger } from "../../worker/audit/ledger.ts";

declare global {
  namespace Cloudflare {
    interface Env {
      DB: D1Database;
      OAUTH_KV: KVNamespace;
      MCP_SESSIONS: DurableObjectNamespace;
      AUDIT_LEDGER: DurableObjectNamespace<AuditLedger>;
      BRIDGE?: DurableObjectNamespace;
      BRIDGE_STATE: R2Bucket;
      HATAGO_BRIDGE_SECRET: string;
      TEST_MIGRATIONS: D1Migration[];
      FUZZ_SEED: string;
      FUZZ_RUNS: string;
    }
    /** Types `exports.default` (cloudflare:workers) as the Worker's default export. */
    interface GlobalProps {
      mainModule: typeof import("../../worker/index.ts");
    }
  }
}
