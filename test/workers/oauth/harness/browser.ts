/**
 * A browser, as far as OAuth cares: a cookie jar for one origin-agnostic session, and requests that do
 * not follow redirects (each step of the flow is asserted). Two Browser instances are two people.
 */
export class Browser {
  readonly #cookies = new Map<string, string>();
  readonly #send: (request: Request) => Promise<Response>;

  constructor(send: (request: Request) => Promise<Response>) {
    this.#send = send;
  }

  /** Cookie names currently held (e.g. the library's `__Host-oauth-…` binding cookies). */
  cookieNames(): string[] {
    return [...this.#cookies.keys()];
  }

  /** A copy of this browser's cookies in another browser: the "same browser" for the server. */
  cloneInto(other: Browser): void {
    for (const [name, value] of this.#cookies) other.#cookies.set(name, value);
  }

  clearCookies(): void {
    this.#cookies.clear();
  }

  async get(url: string, headers: HeadersInit = {}): Promise<Response> {
    return this.#request(new Request(url, { headers: { Accept: "text/html", ...headers }, redirect: "manual" }));
  }

  async postForm(
    url: string,
    fields: Record<string, string> | URLSearchParams,
    headers: HeadersInit = {},
  ): Promise<Response> {
    const body = fields instanceof URLSearchParams ? fields : new URLSearchParams(fields);
    return this.#request(
      new Request(url, {
        method: "POST",
        body: body.toString(),
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "text/html", ...headers },
        redirect: "manual",
      }),
    );
  }

  async #request(request: Request): Promise<Response> {
    if (this.#cookies.size > 0) {
      request.headers.set("Cookie", [...this.#cookies].map(([name, value]) => `${name}=${value}`).join("; "));
    }
    const response = await this.#send(request);
    for (const line of response.headers.getSetCookie()) this.#store(line);
    return response;
  }

  #store(line: string): void {
    const [pair = "", ...attributes] = line.split(";").map((s) => s.trim());
    const eq = pair.indexOf("=");
    const name = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    const expired = attributes.some(
      (a) => /^max-age=(0|-)/i.test(a) || (/^expires=/i.test(a) && Date.parse(a.slice(8)) < Date.now()),
    );
    if (expired || value === "") this.#cookies.delete(name);
    else this.#cookies.set(name, value);
  }
}

/** The form fields of an HTML page's first form whose action matches, by name (hidden and submit values). */
export function formFields(page: string): { action: string; fields: Record<string, string> } {
  const action = page.match(/<form[^>]*action="([^"]*)"/)?.[1] ?? "";
  const fields: Record<string, string> = {};
  for (const input of page.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) {
    fields[input[1] ?? ""] = decodeEntities(input[2] ?? "");
  }
  return { action: decodeEntities(action), fields };
}

export function decodeEntities(s: string): string {
  return s
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&amp;", "&");
}
