import * as pulumi from "@pulumi/pulumi";

/**
 * Runs the Pulumi program (infra/index.ts) under Pulumi's mocks: no CLI, no engine, no provider
 * plugins, no network. The mocks stand in for the Cloudflare, docker-build, command and random
 * providers by echoing inputs and filling in the outputs those providers compute.
 *
 * Pulumi's runtime state is process-global: run one stack per test file (the infra vitest project
 * gives each file its own process).
 */

export const ACCOUNT_ID = "0123456789abcdef0123456789abcdef";
export const FAKE_ACCESS_CLIENT_ID = "access-client-id-0001";
export const FAKE_ACCESS_CLIENT_SECRET = "access-client-secret-value-0001";
export const FAKE_BRIDGE_SECRET = "generated-bridge-secret-0001";
export const FAKE_IMAGE_DIGEST = `sha256:${"ab".repeat(32)}`;
export const FAKE_CONTEXT_HASH = "cd".repeat(32);

/** One resource as the engine would receive it. */
export interface Registered {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, unknown>;
  readonly protect: boolean;
  readonly deleteBeforeReplace: boolean;
  readonly parent: string;
  readonly dependencies: readonly string[];
  readonly replaceOnChanges: readonly string[];
  readonly urn: string;
  /** The inputs as serialized for the engine: secrets are still marked (see isSerializedSecret). */
  readonly serialized: Record<string, unknown>;
}

export interface ProgramRun {
  readonly resources: readonly Registered[];
  readonly outputs: Record<string, unknown>;
  ofType(type: string): Registered[];
  one(type: string, name?: string): Registered;
}

/** Whether a serialized input is a secret: what the engine encrypts in state and masks in output. */
export function isSerializedSecret(value: unknown): boolean {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Record<string, unknown>)[pulumi.runtime.specialSigKey] === pulumi.runtime.specialSecretSig
  );
}

/** Every serialized value under `value` that is not marked secret, flattened to strings. */
export function plainStrings(value: unknown): string[] {
  if (isSerializedSecret(value)) return [];
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(plainStrings);
  if (typeof value === "object" && value !== null) return Object.values(value).flatMap(plainStrings);
  return [];
}

/** Resolves an Output's value (unknowns resolve to undefined). */
export function resolved<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => {
    output.apply((v) => {
      resolve(v);
      return v;
    });
  });
}

interface RegisterRequest {
  getType(): string;
  getName(): string;
  getProtect(): boolean | undefined;
  getDeletebeforereplace(): boolean;
  getParent(): string;
  getDependenciesList(): string[];
  getReplaceonchangesList(): string[];
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
}
interface Monitor {
  registerResource(req: RegisterRequest, callback: (err: unknown, response?: { getUrn(): string }) => void): void;
}

function state(type: string, name: string, inputs: Record<string, unknown>): { id: string; state: object } {
  switch (type) {
    case "cloudflare:index/d1Database:D1Database":
      return { id: `d1-${name}-uuid`, state: { ...inputs, uuid: `d1-${name}-uuid` } };
    case "cloudflare:index/workersKvNamespace:WorkersKvNamespace":
      return { id: `kv-${name}-id`, state: inputs };
    case "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication": {
      const saasApp = inputs.saasApp as Record<string, unknown> | undefined;
      return {
        id: `app-${name}`,
        state: {
          ...inputs,
          aud: `aud-${name}`,
          ...(saasApp
            ? { saasApp: { ...saasApp, clientId: FAKE_ACCESS_CLIENT_ID, clientSecret: FAKE_ACCESS_CLIENT_SECRET } }
            : {}),
        },
      };
    }
    case "docker-build:index:Image": {
      const tags = inputs.tags as string[] | undefined;
      return {
        id: `image-${name}`,
        state: {
          ...inputs,
          digest: FAKE_IMAGE_DIGEST,
          ref: `${tags?.[0] ?? "untagged"}@${FAKE_IMAGE_DIGEST}`,
          contextHash: FAKE_CONTEXT_HASH,
        },
      };
    }
    case "random:index/randomPassword:RandomPassword":
      return { id: `pw-${name}`, state: { ...inputs, result: FAKE_BRIDGE_SECRET } };
    case "command:local:Command":
      return { id: `cmd-${name}`, state: { ...inputs, stdout: "", stderr: "" } };
    default:
      return { id: `${name}-id`, state: inputs };
  }
}

/**
 * Sets config and mocks, then imports the program (the order matters: the program reads config and
 * registers resources when it is imported).
 */
export async function runProgram(options: {
  readonly stack: string;
  readonly config: Record<string, string>;
  readonly secretKeys?: readonly string[];
  readonly preview?: boolean;
}): Promise<ProgramRun> {
  const registered: Registered[] = [];
  const inputsByName = new Map<string, Record<string, unknown>>();
  pulumi.runtime.setAllConfig(options.config, [...(options.secretKeys ?? [])]);
  await pulumi.runtime.setMocks(
    {
      newResource: (args) => {
        inputsByName.set(`${args.type}::${args.name}`, args.inputs);
        return state(args.type, args.name, args.inputs);
      },
      call: (args) => args.inputs,
    },
    "hatago",
    options.stack,
    options.preview ?? false,
  );

  // Record what the engine would see beyond the inputs (protect, parent, replaceOnChanges).
  const monitor = pulumi.runtime.getMonitor() as unknown as Monitor;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) =>
    register(req, (err, response) => {
      if (!err && response) {
        const key = `${req.getType()}::${req.getName()}`;
        registered.push({
          type: req.getType(),
          name: req.getName(),
          inputs: inputsByName.get(key) ?? {},
          protect: req.getProtect() === true,
          deleteBeforeReplace: req.getDeletebeforereplace() === true,
          parent: req.getParent(),
          dependencies: req.getDependenciesList(),
          replaceOnChanges: req.getReplaceonchangesList(),
          urn: response.getUrn(),
          serialized: req.getObject()?.toJavaScript() ?? {},
        });
      }
      callback(err, response);
    });

  // Through Pulumi's entry point (Pulumi.yaml main), as the language host runs it.
  const program = (await import("../../infra/main.js")).default;
  const outputs: Record<string, unknown> = { ...(await program()) };
  // Let every registration settle: await each exported output, then the RPC queue.
  for (const [key, value] of Object.entries(outputs)) {
    if (pulumi.Output.isInstance(value)) outputs[key] = await resolved(value);
  }
  // Every registration holds the runtime's RPC queue open, also one still waiting for its inputs:
  // draining it means every resource has reached the (mock) engine.
  await pulumi.runtime.disconnect();

  const ofType = (type: string) => registered.filter((r) => r.type === type);
  return {
    resources: registered,
    outputs,
    ofType,
    one(type, name) {
      const found = ofType(type).filter((r) => name === undefined || r.name === name);
      if (found.length !== 1) {
        throw new Error(`expected one ${type}${name ? ` named ${name}` : ""}, found ${found.length}`);
      }
      return found[0] as Registered;
    },
  };
}

/** The module of the program as imported by the harness (for outputs that stay Outputs). */
export async function programModule(): Promise<Record<string, unknown>> {
  return { ...(await import("../../infra/index.ts")) };
}

export const TYPES = {
  d1: "cloudflare:index/d1Database:D1Database",
  kv: "cloudflare:index/workersKvNamespace:WorkersKvNamespace",
  r2: "cloudflare:index/r2Bucket:R2Bucket",
  accessApp: "cloudflare:index/zeroTrustAccessApplication:ZeroTrustAccessApplication",
  accessPolicy: "cloudflare:index/zeroTrustAccessPolicy:ZeroTrustAccessPolicy",
  image: "docker-build:index:Image",
  command: "command:local:Command",
  password: "random:index/randomPassword:RandomPassword",
  seed: "pulumi-nodejs:dynamic/hatago:D1PolicySeed",
  capturedSecret: "pulumi-nodejs:dynamic/hatago:CapturedSecret",
} as const;

/** Minimal valid config for a stack (keys without the `hatago:` prefix). */
export function stackConfig(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k.includes(":") ? k : `hatago:${k}`, v]));
}
