import type { Environment, Policy } from "../policy.types.ts";
import dev from "./dev.ts";
import prod from "./prod.ts";
import staging from "./staging.ts";

export const POLICIES: Readonly<Record<Environment, Policy>> = { dev, staging, prod };

/** The policy environment a stack uses: `dev`, `staging`, `prod` by name; `pr-<n>` previews use staging. */
export function environmentForStack(stack: string): Environment {
  if (stack === "dev" || stack === "staging" || stack === "prod") return stack;
  if (/^pr-[0-9]+$/.test(stack)) return "staging";
  throw new Error(
    `No policy environment for stack "${stack}": name it dev, staging, prod or pr-<number>, or set the stack's policy environment explicitly.`,
  );
}

export function policyFor(stack: string): Policy {
  return POLICIES[environmentForStack(stack)];
}
