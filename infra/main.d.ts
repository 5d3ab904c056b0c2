/** The stack's outputs: the exports of infra/index.ts. */
export default function program(): Promise<Record<string, unknown>>;
