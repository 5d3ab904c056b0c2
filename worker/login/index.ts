export { LoginError, type LoginErrorKind } from "./errors.ts";
export type { FinishLogin, UpstreamLogin, UpstreamStart } from "./login.types.ts";
export { DEMO_IDENTITIES, DEMO_NAMES, type DemoName } from "./mock.identities.ts";
export { MAX_MOCK_FORM_BYTES } from "./mock.ts";
export { loginFor } from "./select.ts";
