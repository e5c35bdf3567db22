/**
 * The leader's view of one follower (Raft Figure 2, "volatile state on leaders": nextIndex and matchIndex), plus
 * flow control, so that a slow or unreachable follower costs a bounded number of messages:
 * - `probe`: the leader does not know where the follower's log matches its own. One append at a time, then wait for
 *   its answer (or the next heartbeat answer, when it was lost).
 * - `replicate`: the logs match up to `match`; appends are pipelined, at most `maxInflight` unanswered.
 * - `snapshot`: the follower needs entries the leader has compacted away; one snapshot is on its way.
 * @internal
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** probe: an append was sent and is not yet answered. */
  probeSent = false;
  /** replicate: last index of each unanswered append, ascending. */
  inflight: number[] = [];
  /** snapshot: the index of the snapshot sent, and ticks since, to resend when it was lost. */
  pendingSnapshot = 0;
  snapshotTicks = 0;
  /** The leader's tick count when this follower was last heard from (check-quorum, thesis §6.2). */
  lastHeardTick: number;

  constructor(next: number, nowTick: number) {
    this.next = next;
    this.lastHeardTick = nowTick;
  }

  becomeProbe(): void {
    // After a snapshot the follower holds at least the snapshot, so probe from there.
    this.next = this.state === 'snapshot' ? Math.max(this.match, this.pendingSnapshot) + 1 : this.match + 1;
    this.state = 'probe';
    this.probeSent = false;
    this.inflight = [];
    this.pendingSnapshot = 0;
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.inflight = [];
    this.pendingSnapshot = 0;
  }

  becomeSnapshot(index: number): void {
    this.state = 'snapshot';
    this.pendingSnapshot = index;
    this.snapshotTicks = 0;
    this.probeSent = false;
    this.inflight = [];
  }

  isPaused(maxInflight: number): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflight.length >= maxInflight;
      case 'snapshot':
        return true;
    }
  }

  /** Records a successful answer up to `index`. Returns false when it tells nothing new (stale or duplicated). */
  acknowledge(index: number): boolean {
    let updated = false;
    if (index > this.match) {
      this.match = index;
      updated = true;
    }
    if (this.next < index + 1) this.next = index + 1;
    this.probeSent = false;
    let freed = 0;
    while (freed < this.inflight.length && (this.inflight[freed] as number) <= index) freed++;
    if (freed > 0) this.inflight.splice(0, freed);
    return updated;
  }
}
