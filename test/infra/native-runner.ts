// Runs the program the way Pulumi's Node runtime loads it (Pulumi.yaml: typescript: false): a plain
// `import()` of infra/index.ts by Node, which strips the types itself; no vitest, no bundler. Used by
// native-load.test.ts; prints what it saw as one JSON line.
import { ACCOUNT_ID, runProgram, stackConfig, TYPES } from "./harness.ts";

const run = await runProgram({
  stack: "dev",
  config: stackConfig({ accountId: ACCOUNT_ID, workersDevSubdomain: "acme" }),
  preview: true,
});
const seed = run.one(TYPES.seed);
process.stdout.write(
  `${JSON.stringify({
    types: [...new Set(run.resources.map((r) => r.type))].sort(),
    mcpUrl: run.outputs.mcpUrl,
    serializedProvider: typeof seed.serialized.__provider === "string" ? seed.serialized.__provider : null,
  })}\n`,
);
