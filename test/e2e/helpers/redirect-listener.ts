import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

export interface RedirectListener {
  readonly url: string;
  /** The query of every request to /callback, in order. */
  readonly callbacks: URLSearchParams[];
  /** Serves `html` at `path` from now on (a page on this origin, e.g. one that frames another site). */
  serve(path: string, html: string): void;
  close(): Promise<void>;
}

/**
 * A stand-in for an MCP client's loopback redirect URI (RFC 8252 §7.3): records what arrives at
 * /callback, and serves the pages a test gives it.
 */
export async function startRedirectListener(port: number): Promise<RedirectListener> {
  const callbacks: URLSearchParams[] = [];
  const pages = new Map<string, string>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);
    res.setHeader("content-type", "text/html; charset=utf-8");
    if (url.pathname === "/callback") {
      callbacks.push(url.searchParams);
      res.end("<!doctype html><title>Signed in</title><p>You can close this window.</p>");
      return;
    }
    const page = pages.get(url.pathname);
    res.statusCode = page === undefined ? 404 : 200;
    res.end(page ?? "not found");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    callbacks,
    serve: (path, html) => pages.set(path, html),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
