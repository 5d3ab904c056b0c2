/**
 * Structured logs: one JSON object per line on stdout, for the bridge's own events and its children's
 * stderr alike. Cloudflare Containers collect stdout; tests read the listening port from it.
 *
 * SECURITY: callers log ids, counts and public error messages; never a credential, a secret, a request
 * body or a principal's data. Child stderr is logged as the child wrote it (truncated): it is the
 * server's own diagnostics, which is exactly what an operator needs, and it stays inside the container.
 */

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
}

export function createLogger(level: LogLevel, write: (line: string) => void = writeStdout): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const emit = (at: LogLevel, event: string, fields?: LogFields) => {
    if (LOG_LEVELS.indexOf(at) < min) return;
    let line: string;
    try {
      line = JSON.stringify({ time: new Date().toISOString(), level: at, event, ...fields });
    } catch {
      line = JSON.stringify({ time: new Date().toISOString(), level: at, event, unserializable: true });
    }
    write(`${line}\n`);
  };
  return {
    debug: (event, fields) => emit("debug", event, fields),
    info: (event, fields) => emit("info", event, fields),
    warn: (event, fields) => emit("warn", event, fields),
    error: (event, fields) => emit("error", event, fields),
  };
}

function writeStdout(line: string): void {
  process.stdout.write(line);
}

/** The public text of an error, for logs: the message only, never a stack with paths or data. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
