// Pulumi's entry point (Pulumi.yaml `main`). Plain JavaScript, so that it loads on any Node and can say
// clearly when the Node on PATH is too old for the TypeScript program (infra/index.ts) it then loads.
import { nodeVersionProblem } from "./node-version.js";

/** Pulumi calls a default-exported function and takes what it returns as the stack's outputs. */
export default async function program() {
  const problem = nodeVersionProblem(process.versions.node);
  if (problem) throw new Error(problem);
  return { ...(await import("./index.ts")) };
}
