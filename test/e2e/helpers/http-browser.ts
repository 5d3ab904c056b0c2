/**
 * A minimal browser over HTTP for tests: keeps cookies, follows redirects by hand, reads HTML forms and
 * submits them like a person clicking a button. Enough to walk the consent and login pages without a GUI
 * (the Chromium test covers the pages as rendered).
 */
export interface Form {
  readonly action: string;
  readonly method: string;
  readonly fields: Record<string, string>;
  /** Submit buttons' name=value pairs, in page order. */
  readonly buttons: readonly { name: string; value: string; label: string }[];
}

const decode = (s: string) =>
  s
    .replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'")
    .replaceAll("&lt;", "<")
    .replaceAll("&gt;", ">")
    .replaceAll("&amp;", "&");

const attr = (tag: string, name: string) => {
  const m = new RegExp(`\\s${name}="([^"]*)"`, "i").exec(tag);
  return m?.[1] === undefined ? undefined : decode(m[1]);
};

export function parseForms(html: string): Form[] {
  const forms: Form[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const open = m[1] ?? "";
    const body = m[2] ?? "";
    const fields: Record<string, string> = {};
    for (const input of body.matchAll(/<input\b[^>]*>/gi)) {
      const name = attr(input[0], "name");
      const type = (attr(input[0], "type") ?? "text").toLowerCase();
      if (!name || type === "submit" || ((type === "checkbox" || type === "radio") && !/\schecked\b/i.test(input[0])))
        continue;
      fields[name] = attr(input[0], "value") ?? "";
    }
    const buttons = [...body.matchAll(/<button\b([^>]*)>([\s\S]*?)<\/button>/gi)].map((b) => ({
      name: attr(b[0], "name") ?? "",
      value: attr(b[0], "value") ?? "",
      label: (b[2] ?? "").replace(/<[^>]+>/g, "").trim(),
    }));
    forms.push({
      action: attr(`<form${open}>`, "action") ?? "",
      method: (attr(`<form${open}>`, "method") ?? "get").toUpperCase(),
      fields,
      buttons,
    });
  }
  return forms;
}

export class HttpBrowser {
  readonly cookies = new Map<string, string>();

  async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    const res = await fetch(url, { ...init, headers, redirect: "manual" });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair?.indexOf("=") ?? -1;
      if (!pair || eq < 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (/max-age=0|expires=thu, 01 jan 1970/i.test(line) || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }

  async submit(
    pageUrl: string,
    form: Form,
    button?: { name: string; value: string },
    overrides: Record<string, string> = {},
  ): Promise<Response> {
    const body = new URLSearchParams({ ...form.fields, ...overrides });
    if (button?.name) body.set(button.name, button.value);
    const target = new URL(form.action || pageUrl, pageUrl).toString();
    // A browser sends the page's origin with a form post (our pages' Referrer-Policy keeps it).
    return this.request(target, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: new URL(pageUrl).origin },
      body,
    });
  }
}
