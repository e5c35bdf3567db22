/**
 * The replicated application the simulation runs on top of Raft. Anything deterministic fits: the default below, or
 * the monitor's cluster-map reducers. The checkers compare `digest` of every node's state at every applied index, so
 * the digest must cover everything that matters about the state.
 */
import type { Random } from '../../src/common/index.js';

export interface StateMachine<S> {
  initial(): S;
  /** Applies one committed command. May update `state` in place and return it. */
  apply(state: S, data: Uint8Array): S;
  /** Equal digests mean equal states. */
  digest(state: S): string;
  snapshot(state: S): Uint8Array;
  restore(bytes: Uint8Array): S;
  /** An application-level invariant, checked wherever the digest is (after every apply, snapshot install and
   * restart): a message says what is broken. */
  check?(state: S): string | undefined;
}

/** Makes the `sequence`-th client command (any bytes `apply` accepts). */
export type CommandGenerator = (random: Random, sequence: number) => Uint8Array;

/**
 * The default application: a small key-value map where each applied command `key=value` sets a key and bumps
 * `epoch` (as each cluster-map change bumps the map epoch). `history` hashes every command ever applied, in order, so
 * two states that agree on the map but got there differently still have different digests.
 */
export interface KvState {
  epoch: number;
  values: Map<string, string>;
  history: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** FNV-1a, continued from `hash`. */
function fnv1a(hash: number, bytes: Uint8Array): number {
  let h = hash;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

export const kvStateMachine: StateMachine<KvState> = {
  initial: () => ({ epoch: 0, values: new Map(), history: 0x811c9dc5 }),
  apply(state, data) {
    const text = decoder.decode(data);
    const eq = text.indexOf('=');
    if (eq > 0) state.values.set(text.slice(0, eq), text.slice(eq + 1));
    state.epoch++;
    state.history = fnv1a(state.history, data);
    return state;
  },
  digest(state) {
    const keys = [...state.values.keys()].sort();
    return `${state.epoch}:${state.history.toString(16)}:${keys.map((k) => `${k}=${state.values.get(k)}`).join(',')}`;
  },
  snapshot(state) {
    return encoder.encode(JSON.stringify({ epoch: state.epoch, history: state.history, values: [...state.values] }));
  },
  restore(bytes) {
    const parsed = JSON.parse(decoder.decode(bytes)) as { epoch: number; history: number; values: [string, string][] };
    return { epoch: parsed.epoch, history: parsed.history, values: new Map(parsed.values) };
  },
};

export const kvCommand: CommandGenerator = (random, sequence) =>
  encoder.encode(`k${random.int(0, 15)}=v${sequence}`);
