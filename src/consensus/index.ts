/**
 * @packageDocumentation
 * Raft consensus (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", 2014; Ongaro's thesis,
 * "Consensus: Bridging Theory and Practice", 2014, for pre-vote, check-quorum and the leader lease) as a pure,
 * synchronous state machine. The caller owns time, the network and the disk; see README.md for its duties.
 *
 * @example
 * ```ts
 * const node = new RaftNode({ id: 'a', voters: ['a', 'b', 'c'], electionTicks: 10, heartbeatTicks: 1,
 *   random: new Random(seed), preVote: true, checkQuorum: true }, persisted);
 * // every tick interval: node.tick(); on each message: node.step(message); then:
 * while (node.hasReady()) {
 *   const rd = node.ready();
 *   persist(rd.snapshot, rd.entries, rd.hardState);  // 1. durably, before anything else
 *   send(rd.messages);                                  // 2.
 *   if (rd.snapshot) app.load(rd.snapshot.data);        // 3.
 *   for (const e of rd.committedEntries) app.apply(e);  // 4.
 *   node.advance(rd);                                   // 5.
 * }
 * ```
 */
export * from './types.js';
export { RaftNode, raftDefaults, type FollowerStatus, type RaftStatus } from './raft-node.js';
