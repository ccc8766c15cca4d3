/**
 * Branded numeric ids. The brand is optional, so arithmetic results and literals assign freely,
 * but two different brands never mix: a Raft `LogIndex` cannot be passed where a client `Offset`
 * is expected, and a `Term` is not a `NodeId`.
 */
type Brand<B extends string> = { readonly __brand?: B };

/** A Raft term. Terms only grow. */
export type Term = number & Brand<"Term">;
/** A position in a Raft log, starting at 1; 0 means "before the first entry". */
export type LogIndex = number & Brand<"LogIndex">;
/** A broker node's id, unique within a cluster, never 0 (0 means "none"). */
export type NodeId = number & Brand<"NodeId">;
/** A Raft group's id, unique within a node. */
export type GroupId = number & Brand<"GroupId">;
/** A client-visible record offset inside a partition. */
export type Offset = number & Brand<"Offset">;

/** The node id that means "nobody" (no leader, no vote). */
export const NO_NODE: NodeId = 0;
