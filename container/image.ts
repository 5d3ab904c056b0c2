import type { BuildStep, CatalogEntry } from "../policies/catalog.types.ts";
import { BRIDGE_COMMAND } from "./src/entry.ts";
import { IMAGE_PYTHON_ENV_ROOT } from "./src/launch.ts";

/**
 * The bridge image, rendered from the catalog: each runtime is in it only if some entry needs it, and
 * each entry's own install steps follow. `npm run image:dockerfile` writes container/Dockerfile from
 * this; test/bridge/image.test.ts fails when the committed file differs, so the Dockerfile reviewers read
 * is always the catalog's. Nothing here runs when a server starts: every fetch is at image build time,
 * pinned (npm by the lockfile, Python packages by version, downloads by SHA-256).
 */

/** Debian's base: the Node the bridge needs, on bookworm (whose packages `debian` steps name). */
const BASE_IMAGE = "node:22-bookworm-slim";
/**
 * uv, for Python packages, copied from its official image at a pinned version (only when an entry
 * installs a Python package). Pin it by digest too when you add the first such entry.
 */
export const UV_IMAGE = "ghcr.io/astral-sh/uv:0.9.5";

/** The files of this repository the image copies for the catalog (beside the bridge's own code). */
export function catalogRepositoryFiles(entries: Readonly<Record<string, CatalogEntry>>): string[] {
  const files: string[] = [];
  for (const entry of Object.values(entries)) {
    if (entry.install.runtime === "python") files.push(...(entry.install.files ?? []));
    if (entry.install.runtime === "command") {
      for (const step of entry.install.steps) if (step.kind === "copy") files.push(step.from);
    }
  }
  return [...new Set(files)].sort();
}

export function renderDockerfile(entries: Readonly<Record<string, CatalogEntry>>): string {
  const ids = Object.keys(entries).sort();
  const all = ids.map((id) => [id, entries[id] as CatalogEntry] as const);
  const python = all.filter(([, e]) => e.install.runtime === "python");
  const pythonPackages = python.flatMap(([id, e]) =>
    e.install.runtime === "python" && e.install.package ? [[id, e.install.package] as const] : [],
  );
  const commandSteps = all.flatMap(([id, e]) =>
    e.install.runtime === "command" ? e.install.steps.map((step) => [id, step] as const) : [],
  );
  const debian = [
    "tini",
    ...(python.length > 0 ? ["python3"] : []),
    ...commandSteps.flatMap(([, s]) => (s.kind === "debian" ? s.packages : [])),
  ];
  const out: string[] = [];
  const line = (...parts: string[]) => out.push(...parts);

  line(
    "# syntax=docker/dockerfile:1.7",
    "# GENERATED from policies/catalog.ts by `npm run image:dockerfile` (container/image.ts). Do not edit:",
    "# change the catalog and regenerate; test/bridge/image.test.ts fails when this file is stale.",
    "# The Hatago bridge: one Node process serving the catalog's stdio MCP servers over Streamable HTTP.",
    "# Build context: the repository root, as .dockerignore admits it:",
    "#   docker build --platform linux/amd64 -f container/Dockerfile -t hatago-bridge .",
    `FROM --platform=linux/amd64 ${BASE_IMAGE}`,
    "",
    "# tini as PID 1 (forwards SIGTERM, reaps orphans)" +
      (python.length > 0 ? "; python3 for the catalog's Python servers" : "") +
      (debian.length > (python.length > 0 ? 2 : 1) ? "; the Debian packages entries declare" : "") +
      ".",
    "RUN apt-get update \\",
    `  && apt-get install -y --no-install-recommends ${[...new Set(debian)].sort().join(" ")} \\`,
    "  && rm -rf /var/lib/apt/lists/*",
    "",
  );
  if (pythonPackages.length > 0) {
    line(
      "# Python packages: each in its own virtual environment, by exact version, at build time only.",
      `COPY --from=${UV_IMAGE} /uv /usr/local/bin/uv`,
    );
    for (const [id, pkg] of pythonPackages) {
      const venv = `${IMAGE_PYTHON_ENV_ROOT}/${pkg.name}`;
      line(
        `# ${id}`,
        `RUN uv venv --python /usr/bin/python3 ${venv} \\`,
        `  && uv pip install --python ${venv}/bin/python --no-cache ${shellWord(`${pkg.name}==${pkg.version}`)}`,
      );
    }
    line("");
  }
  const fetched = commandSteps.flatMap(([id, s]) => (s.kind === "download" ? [[id, s] as const] : []));
  if (fetched.length > 0) {
    line("# Release artifacts: fetched at build time only, refused unless the SHA-256 matches.");
    for (const [id, step] of fetched) line(...downloadLines(id, step));
    line("");
  }
  line(
    "WORKDIR /app",
    "ENV NODE_ENV=production \\",
    "    HOST=0.0.0.0 \\",
    "    PORT=8080 \\",
    "    HATAGO_BRIDGE_DATA_DIR=/data",
    "",
    '# Production dependencies only: the MCP SDK and the npm servers (root package.json "dependencies").',
    "COPY package.json package-lock.json ./",
    "RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force",
    "",
    "COPY policies/ ./policies/",
    "COPY container/src/ ./container/src/",
  );
  const files = catalogRepositoryFiles(entries);
  if (files.length > 0) {
    line("# Files of this repository the catalog's servers run.");
    for (const file of files) line(`COPY ${repositoryPath("catalog", file)} ./${file}`);
  }
  for (const [id, step] of commandSteps) {
    if (step.kind === "copy") line(`# ${id}`, `COPY ${repositoryPath(id, step.from)} ${imagePath(id, step.to)}`);
  }
  line(
    "",
    "# Non-root: the bridge and its children run as `node` (uid 1000); only /data is writable for them.",
    "RUN mkdir -p /data && chown node:node /data",
    "USER node",
    "",
    "EXPOSE 8080",
    'ENTRYPOINT ["/usr/bin/tini", "--"]',
    "# BRIDGE_COMMAND of container/src/entry.ts: the tests start the bridge with exactly this entry.",
    `CMD ${JSON.stringify([...BRIDGE_COMMAND])}`,
    "",
  );
  return out.join("\n");
}

function downloadLines(id: string, step: Extract<BuildStep, { kind: "download" }>): string[] {
  if (!/^[0-9a-f]{64}$/.test(step.sha256)) throw new Error(`${id}: a download's sha256 must be 64 hex digits`);
  if (!/^https:\/\//.test(step.url)) throw new Error(`${id}: a download must be https`);
  return [
    `# ${id}`,
    `ADD --checksum=sha256:${step.sha256} ${step.url} ${imagePath(id, step.to)}`,
    ...(step.executable ? [`RUN chmod 0755 ${imagePath(id, step.to)}`] : []),
  ];
}

/** A repository file: relative, inside the repository, no whitespace (it is a build context path). */
function repositoryPath(id: string, file: string): string {
  if (!/^[A-Za-z0-9._/-]+$/.test(file) || file.startsWith("/") || file.split("/").includes(".."))
    throw new Error(`${id}: "${file}" must be a plain path inside the repository`);
  return file;
}

/** An absolute path in the image, no whitespace. */
function imagePath(id: string, file: string): string {
  if (!/^\/[A-Za-z0-9._/-]+$/.test(file) || file.split("/").includes(".."))
    throw new Error(`${id}: "${file}" must be a plain absolute path in the image`);
  return file;
}

/** A word safe in a shell command line (the package specifiers we render), or an error. */
function shellWord(word: string): string {
  if (!/^[A-Za-z0-9._=+-]+$/.test(word)) throw new Error(`refusing to render "${word}" into a shell command`);
  return word;
}
