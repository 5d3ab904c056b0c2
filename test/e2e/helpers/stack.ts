import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { type LocalStack, startLocalStack } from "../../../scripts/lib/local-stack.ts";

export interface TestStack extends LocalStack {
  readonly stateDir: string;
  /** Everything the stack's processes printed, for failure messages. */
  readonly output: string[];
  /** Stops the stack and removes its state. */
  dispose(): Promise<void>;
}

/** Starts the local stack exactly as `npm start` does, on the given ports, with a fresh state directory. */
export async function startTestStack(basePort: number): Promise<TestStack> {
  const stateDir = await mkdtemp(path.join(tmpdir(), "hatago-e2e-"));
  const output: string[] = [];
  const stack = await startLocalStack({
    host: "127.0.0.1",
    port: basePort,
    bridgePort: basePort + 1,
    inspectorPort: basePort + 2,
    stateDir,
    log: (source, line) => {
      output.push(`[${source}] ${line}`);
      if (output.length > 2_000) output.shift();
    },
  });
  return {
    ...stack,
    stateDir,
    output,
    async dispose() {
      await stack.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}
