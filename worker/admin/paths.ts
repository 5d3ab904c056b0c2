/**
 * Admin endpoints under this prefix (the JSON API, and the console at `${ADMIN_PATH}/console`).
 * A leaf module: the console, the connect pages and the API all import it, and none of them may be
 * evaluated before it (an import cycle once left it undefined in the console's links).
 */
export const ADMIN_PATH = "/admin";
