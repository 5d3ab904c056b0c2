/** The mock login's demo people. They match policies/environments/dev.ts (a test checks each one's effective role). */
export const DEMO_NAMES = ["alice", "bob", "carol", "dave", "erin", "frank"] as const;
export type DemoName = (typeof DEMO_NAMES)[number];

export interface DemoPerson {
  readonly displayName: string;
  /** What the dev policy gives them, shown on the picker. */
  readonly note: string;
  readonly verifiedEmail: string | null;
  /** Mock group names (subjects `group:mock:<name>`), pre-filled and editable on the picker. */
  readonly groups: readonly string[];
}

export const DEMO_IDENTITIES: Readonly<Record<DemoName, DemoPerson>> = {
  alice: { displayName: "Alice", note: "admin", verifiedEmail: null, groups: [] },
  bob: { displayName: "Bob", note: "writer", verifiedEmail: null, groups: [] },
  carol: {
    displayName: "Carol",
    note: "reader, bound by her verified email",
    verifiedEmail: "carol@example.com",
    groups: [],
  },
  dave: { displayName: "Dave", note: "no role: sees no tools", verifiedEmail: null, groups: [] },
  erin: { displayName: "Erin", note: "researcher, through the staff group", verifiedEmail: null, groups: ["staff"] },
  frank: { displayName: "Frank", note: "on call: raw stdio on memory", verifiedEmail: null, groups: ["oncall"] },
};
