// Plain JavaScript on purpose: it must load on any Node, also one too old to strip TypeScript types.

/** The oldest Node that loads this program's `.ts` files itself (type stripping on by default). */
export const MIN_NODE = [22, 18];

/**
 * Why this Node cannot run the program, or null. Pulumi's language host runs the program with the
 * `node` it finds on PATH, not the one package.json pins as a dev dependency (node_modules/.bin/node),
 * so a first `pulumi up` on a machine with an older system Node would otherwise fail on the first
 * `.ts` import with a message that names neither.
 */
export function nodeVersionProblem(version) {
  const [major = 0, minor = 0] = String(version).replace(/^v/, "").split(".").map(Number);
  if (major > MIN_NODE[0] || (major === MIN_NODE[0] && minor >= MIN_NODE[1])) return null;
  return (
    `Pulumi is running this program with Node ${version}, from the \`node\` on PATH; it needs Node >= ${MIN_NODE.join(".")}. ` +
    "Run Pulumi through npm, which puts the repository's pinned Node first on PATH: `npm run pulumi -- up` " +
    '(or `PATH="$PWD/node_modules/.bin:$PATH" pulumi up`). See infra/README.md, Prerequisites.'
  );
}
