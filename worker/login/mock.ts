import { z } from "zod";
import { HttpError } from "../http/errors.ts";
import { readSingleValueForm } from "../http/form.ts";
import type { LoginIdentity } from "../oauth/props.ts";
import type { FinishLogin, UpstreamLogin, UpstreamStart } from "./login.types.ts";
import { DEMO_IDENTITIES, DEMO_NAMES } from "./mock.identities.ts";
import { mockPickerPage } from "./mock.page.ts";

/**
 * SECURITY: the mock login lets whoever holds the browser pick any demo identity. It is for local
 * development and tests only; config.ts refuses it when HATAGO_ENVIRONMENT=prod, and app.ts checks again.
 */
export const MOCK_PAGE_PATH = "/login/mock";
const CALLBACK_PATH = "/login/mock/callback";
/** The picker's form is tiny; anything bigger is not from it. */
export const MAX_MOCK_FORM_BYTES = 4_096;
const MOCK_GROUP = /^[a-z][a-z0-9-]{0,31}$/;
const MAX_MOCK_GROUPS = 16;

const Form = z.object({
  identity: z.enum(DEMO_NAMES),
  groups: z
    .string()
    .max(1_024)
    .default("")
    .transform((s) => s.split(/[\s,]+/).filter((g) => g !== ""))
    .pipe(z.array(z.string().regex(MOCK_GROUP)).max(MAX_MOCK_GROUPS)),
});

export function mockLogin(publicUrl: string): UpstreamLogin {
  return {
    provider: "mock",
    label: "the mock login (development only)",
    callbackPath: CALLBACK_PATH,
    callbackMethod: "POST",

    async start(): Promise<UpstreamStart> {
      return { data: {}, url: (state) => `${publicUrl}${MOCK_PAGE_PATH}?state=${encodeURIComponent(state)}` };
    },

    async readCallback(request: Request): Promise<FinishLogin> {
      const form = await readSingleValueForm(request, ["identity", "groups"]);
      const fields = Object.fromEntries(form);
      const parsed = Form.safeParse(fields);
      if (!parsed.success)
        throw new HttpError("bad_request", "Pick one of the demo people; groups are lowercase names");
      const { identity, groups } = parsed.data;
      const person = DEMO_IDENTITIES[identity];
      return async (): Promise<LoginIdentity> => ({
        provider: "mock",
        principal: `mock:${identity}`,
        displayName: person.displayName,
        verifiedEmail: person.verifiedEmail,
        groups: groups.map((g) => `group:mock:${g}`),
      });
    },

    pages: {
      [MOCK_PAGE_PATH]: (request) => {
        const state = new URL(request.url).searchParams.get("state") ?? "";
        // The state is the OAuth library's handle (base64url); echo nothing else into the form.
        if (!/^[A-Za-z0-9_-]{16,128}$/.test(state))
          throw new HttpError("bad_request", "This sign-in link is incomplete");
        return mockPickerPage(`${CALLBACK_PATH}?state=${state}`);
      },
    },
  };
}
