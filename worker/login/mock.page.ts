import { html } from "../http/html.ts";
import { pageResponse } from "../http/page.ts";
import { DEMO_IDENTITIES } from "./mock.identities.ts";

/** The mock login's identity picker: one small form per demo person, with editable groups. No script. */
export function mockPickerPage(action: string): Response {
  const people = Object.entries(DEMO_IDENTITIES).map(
    ([name, person]) => html`<form class="card" method="post" action="${action}">
  <input type="hidden" name="identity" value="${name}">
  <strong>${person.displayName}</strong>
  <p class="muted">mock:${name}${person.verifiedEmail ? html`, verified email ${person.verifiedEmail}` : html``} · ${person.note}</p>
  <label class="muted">Groups (group:mock:…), comma-separated
    <input type="text" name="groups" value="${person.groups.join(", ")}" maxlength="1024"></label>
  <div class="actions"><button class="primary" type="submit">Sign in as ${person.displayName}</button></div>
</form>`,
  );
  return pageResponse(
    200,
    "Mock login",
    html`<h1>Mock login</h1>
<p class="warning">Development only: pick who you are. This page does not exist in production.</p>
${people}`,
  );
}
