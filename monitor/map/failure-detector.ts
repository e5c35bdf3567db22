/**
 * Decides, on the leader, which OSDs to mark down and out. Pure: the caller feeds heartbeats and peer failure reports
 * with the time they arrived and asks for decisions; the decisions become ordinary Raft-logged commands.
 *
 * - down: an up OSD silent to the monitors for `osdGraceMs`, or reported failed by at least `failureReportersMin`
 *   distinct up peers within that window (unless `nodown` is set);
 * - out: a down OSD still in after `downOutIntervalMs` (unless `noout` is set).
 * A new leader knows no heartbeats, so it starts every OSD's grace afresh (`reset`) instead of marking all down; and
 * the grace of an OSD that (re)booted starts when the detector first sees that boot in the map.
 */
import type { ClusterMap, MonitorCommand, Timeouts } from '../../src/index.js';

export class FailureDetector {
  readonly #timeouts: Timeouts;
  readonly #lastSeenMs = new Map<number, number>();
  /** The boot (upFromEpoch) each lastSeen belongs to: a reboot starts a fresh grace period. */
  readonly #seenBoot = new Map<number, number>();
  /** target -> reporter -> time of its latest report */
  readonly #reports = new Map<number, Map<number, number>>();
  #sinceMs = 0;

  constructor(timeouts: Timeouts) {
    this.#timeouts = timeouts;
  }

  reset(nowMs: number): void {
    this.#lastSeenMs.clear();
    this.#seenBoot.clear();
    this.#reports.clear();
    this.#sinceMs = nowMs;
  }

  heartbeat(osdId: number, nowMs: number): void {
    this.#lastSeenMs.set(osdId, nowMs);
    this.#reports.delete(osdId);
  }

  report(target: number, reporter: number, stillFailed: boolean, nowMs: number): void {
    let reporters = this.#reports.get(target);
    if (!stillFailed) {
      reporters?.delete(reporter);
      return;
    }
    if (!reporters) this.#reports.set(target, (reporters = new Map()));
    reporters.set(reporter, nowMs);
  }

  /** Commands to propose now (at most one down and one out command, each covering every affected OSD). */
  decide(map: ClusterMap, nowMs: number): MonitorCommand[] {
    const graceMs = this.#timeouts.osdGraceMs;
    const upIds = new Set(map.osds.filter((o) => o.up).map((o) => o.id));
    const down: number[] = [];
    if (!map.flags.includes('nodown')) {
      for (const osd of map.osds) {
        if (!osd.up) continue;
        if (this.#seenBoot.get(osd.id) !== osd.upFromEpoch) {
          // The first time this detector sees this boot of the OSD (decide runs every few hundred ms, so about when
          // it booted): its grace period starts now, whatever was heard from an earlier boot.
          this.#seenBoot.set(osd.id, osd.upFromEpoch);
          this.#lastSeenMs.set(osd.id, Math.max(this.#lastSeenMs.get(osd.id) ?? 0, nowMs));
        }
        const lastSeenMs = Math.max(this.#lastSeenMs.get(osd.id) ?? 0, this.#sinceMs);
        const reporters = [...(this.#reports.get(osd.id) ?? new Map<number, number>()).entries()].filter(
          ([reporter, atMs]) => upIds.has(reporter) && reporter !== osd.id && nowMs - atMs <= graceMs && atMs >= lastSeenMs,
        );
        if (nowMs - lastSeenMs > graceMs || reporters.length >= this.#timeouts.failureReportersMin) down.push(osd.id);
      }
    }
    const out: number[] = [];
    if (!map.flags.includes('noout')) {
      for (const osd of map.osds) {
        if (!osd.up && osd.in && osd.downAtMs > 0 && nowMs - osd.downAtMs >= this.#timeouts.downOutIntervalMs) out.push(osd.id);
      }
    }
    const commands: MonitorCommand[] = [];
    if (down.length > 0) commands.push({ timestampMs: nowMs, osdDown: { ids: down, reason: 'failure detected' } });
    if (out.length > 0) commands.push({ timestampMs: nowMs, osdOut: { ids: out, reason: 'auto' } });
    return commands;
  }
}
