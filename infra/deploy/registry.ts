import { spawn } from "node:child_process";
import { CLOUDFLARE_REGISTRY, type CloudflareApi, registryCredentials } from "../cloudflare-api.ts";

/**
 * Runs docker with arguments and text on stdin; resolves with its exit code. Injected so tests can stand
 * in for it (FakeDocker): no Docker engine runs here.
 */
export type DockerRunner = (args: readonly string[], stdin: string) => Promise<number>;

export function realDocker(): DockerRunner {
  return (args, stdin) =>
    new Promise((resolve, reject) => {
      const child = spawn("docker", [...args], { stdio: ["pipe", "inherit", "inherit"] });
      child.on("error", reject);
      child.on("close", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
      child.stdin.end(stdin);
    });
}

/**
 * Logs the local Docker in to Cloudflare's registry with push credentials minted now, right before the
 * image is pushed (the Pulumi program runs this after the image is built, before it is pushed), so a
 * slow build cannot outlive them. SECURITY: the password goes on docker's stdin, never in its
 * arguments (visible to every process) nor in Pulumi's state.
 */
export async function registryLogin(options: {
  readonly accountId: string;
  readonly api: CloudflareApi;
  readonly docker: DockerRunner;
}): Promise<void> {
  const { username, password } = await registryCredentials(options.api, options.accountId);
  const code = await options.docker(
    ["login", CLOUDFLARE_REGISTRY, "--username", username, "--password-stdin"],
    password,
  );
  if (code !== 0) throw new Error(`docker login ${CLOUDFLARE_REGISTRY} failed (exit ${code}); its output is above`);
}
