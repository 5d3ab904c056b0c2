import type { Config } from "../config.ts";
import { accessLogin } from "./access.ts";
import { githubLogin } from "./github.ts";
import type { UpstreamLogin } from "./login.types.ts";
import { mockLogin } from "./mock.ts";
import { genericOidcLogin } from "./oidc.ts";

/** The upstream login the configuration names. One per Worker: each environment chooses exactly one. */
export function loginFor(config: Config): UpstreamLogin {
  const { login, publicUrl } = config;
  switch (login.provider) {
    case "mock":
      // SECURITY: config.ts already refuses this; a Worker built some other way must not get it either.
      if (config.environment === "prod") throw new Error("the mock login is refused in production");
      return mockLogin(publicUrl);
    case "github":
      return githubLogin(login, publicUrl);
    case "access":
      return accessLogin(login, publicUrl);
    case "oidc":
      return genericOidcLogin(login, publicUrl);
  }
}
