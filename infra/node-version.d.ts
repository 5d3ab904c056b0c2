export declare const MIN_NODE: readonly [number, number];
export declare function nodeVersionProblem(version: string): string | null;
