import * as pulumi from "@pulumi/pulumi";
import type { z } from "zod";

/** The config namespace: the project name in Pulumi.yaml. Keys are written `hatago:<key>`. */
export const CONFIG_NAMESPACE = "hatago";

/** Where config comes from: `pulumi.Config` in a deployment, a plain map in tests. */
export interface ConfigSource {
  /** The raw value (objects and lists as JSON text), or undefined. */
  get(key: string): string | undefined;
  /** The value as a Pulumi secret, or undefined. */
  getSecret(key: string): pulumi.Output<string> | undefined;
}

export function pulumiConfigSource(): ConfigSource {
  const config = new pulumi.Config(CONFIG_NAMESPACE);
  return { get: (key) => config.get(key), getSecret: (key) => config.getSecret(key) };
}

/**
 * Reads one key at a time and records problems instead of throwing, so that one run reports every
 * mistake in a stack file. Each problem starts with the full key (`hatago:<key>: …`).
 */
export class ConfigReader {
  readonly problems: string[] = [];
  readonly #source: ConfigSource;

  constructor(source: ConfigSource) {
    this.#source = source;
  }

  key(name: string): string {
    return `${CONFIG_NAMESPACE}:${name}`;
  }

  isSet(name: string): boolean {
    const raw = this.#source.get(name);
    return raw !== undefined && raw !== "";
  }

  fail(name: string, problem: string): undefined {
    this.problems.push(`${this.key(name)}: ${problem}`);
    return undefined;
  }

  /** The value checked by `schema`; undefined when unset or invalid (invalid is recorded). */
  read<T>(name: string, schema: z.ZodType<T>, options: { json?: boolean } = {}): T | undefined {
    const raw = this.#source.get(name);
    if (raw === undefined || raw === "") return undefined;
    let value: unknown = raw;
    if (options.json) {
      try {
        value = JSON.parse(raw);
      } catch {
        return this.fail(name, `expected a YAML list or object in the stack file, got ${JSON.stringify(raw)}`);
      }
    }
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      const detail = parsed.error.issues.map((i) => (i.path.length ? `[${i.path.join(".")}] ` : "") + i.message);
      return this.fail(name, detail.join("; "));
    }
    return parsed.data;
  }

  /** Like `read`, and records a missing value with how to set it. */
  require<T>(
    name: string,
    schema: z.ZodType<T>,
    why: string,
    hint: string,
    options: { json?: boolean } = {},
  ): T | undefined {
    if (!this.isSet(name)) return this.fail(name, `required ${why} (${hint})`);
    return this.read(name, schema, options);
  }

  /**
   * A secret value; a missing one is recorded with the `--secret` command that sets it. With `schema`,
   * the plain value is checked too (Pulumi decrypts config before the program runs, also on preview);
   * SECURITY: the problem recorded is the schema's message, never the value.
   */
  requireSecret(name: string, why: string, schema?: z.ZodType<string>): pulumi.Output<string> {
    const value = this.#source.getSecret(name);
    if (value === undefined) {
      this.fail(name, `required ${why} (pulumi config set --secret ${this.key(name)} <value>)`);
      return pulumi.secret("");
    }
    const plain = this.#source.get(name);
    if (schema && plain !== undefined) {
      const parsed = schema.safeParse(plain);
      if (!parsed.success) this.fail(name, parsed.error.issues.map((i) => i.message).join("; "));
    }
    return value;
  }
}
