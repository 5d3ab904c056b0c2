/**
 * What a multiplexer hands its change notifications to besides its sessions: one open `POST /listen` stream
 * (listen.ts, for an MCP 2026-07-28 `subscriptions/listen` at the Worker). Declared on its own, with no
 * imports, so the multiplexer, routing and the listener registry can all name it without an import cycle.
 *
 * A listener is passive: it is not one of the multiplexer's ports, so it neither starts the server's
 * process nor keeps it from idling out. It hears what the process says while it runs.
 */
export interface ChangeListener {
  /** Whose stream this is (a per-user process only ever has listeners of its own principal). */
  readonly principal: string;
  /** The server's own resource URIs whose `notifications/resources/updated` this listener wants. */
  readonly resources: ReadonlySet<string>;
  /**
   * A change notification, as the child sent it: `notifications/{tools,prompts,resources}/list_changed`, or
   * `notifications/resources/updated` for one of `resources`.
   */
  change(method: string, line: string): void;
}

/** The notifications a listener is given (the four a 2026-07-28 listen filter can ask for). */
export const CHANGE_METHODS: ReadonlySet<string> = new Set([
  "notifications/tools/list_changed",
  "notifications/prompts/list_changed",
  "notifications/resources/list_changed",
  "notifications/resources/updated",
]);
