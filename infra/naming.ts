/**
 * Every Cloudflare object is named after the stack, so stacks in one account never collide and a
 * reader of the dashboard can tell which stack owns what.
 */

/** Prefix of every Cloudflare object this program creates. */
export const NAME_PREFIX = "hatago";

/**
 * Stack names that are safe inside Cloudflare names. Worker names are lowercase letters, digits and
 * dashes, at most 63 characters; the longest name derived here is `hatago-<stack>-bridge` (+14).
 */
export const STACK_NAME = /^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/;

/** `pr-<number>`: a preview stack for one pull request, created and destroyed by CI. */
export const PREVIEW_STACK = /^pr-[0-9]+$/;

export function isPreviewStack(stack: string): boolean {
  return PREVIEW_STACK.test(stack);
}

export interface Names {
  /** Worker script name; also the workers.dev host label. */
  readonly worker: string;
  readonly d1: string;
  readonly kv: string;
  /** The container application wrangler creates for the Durable Object class `BridgeContainer`. */
  readonly containerApp: string;
  /** Repository in Cloudflare's registry (`registry.cloudflare.com/<account>/<repo>`). */
  readonly imageRepository: string;
  /** Human-readable prefix for Access applications and policies. */
  readonly display: string;
}

export function namesFor(stack: string): Names {
  const base = `${NAME_PREFIX}-${stack}`;
  return {
    worker: base,
    d1: base,
    kv: `${base}-oauth`,
    containerApp: `${base}-bridge`,
    imageRepository: `${NAME_PREFIX}-bridge`,
    display: `Hatago (${stack})`,
  };
}
