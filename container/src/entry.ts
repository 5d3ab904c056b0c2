/**
 * How the bridge is started, in one place: the image's CMD and the tests both use exactly this
 * (test/bridge/image.test.ts checks the Dockerfile against it). Paths are relative to the application
 * root (`/app` in the image, the repository locally); Node 22 strips the types natively.
 */
export const BRIDGE_ENTRY = "container/src/main.ts";
export const BRIDGE_COMMAND = ["node", BRIDGE_ENTRY] as const;
