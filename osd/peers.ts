/** How an OSD talks to other OSDs: named ops with a typed header and a raw payload (the messenger underneath). */
export const osdOpNames = [
  'op', 'pg-list', 'rep-op', 'pg-info', 'pull', 'push', 'scan', 'pg-activate', 'ping', 'watch', 'watch-poll', 'notify', 'notify-ack', 'pg-scrub',
  'ec-read', 'ec-rollback', 'ec-commit',
] as const;
export type OsdOpName = (typeof osdOpNames)[number];

export interface PeerReply {
  header: Uint8Array;
  payload: Buffer;
}

export interface PeerLink {
  /** Sends to OSD `osd` at its address in the current map; rejects with a StorageError (UNAVAILABLE, TIMEOUT, ...). */
  call(osd: number, op: OsdOpName, header: Uint8Array, payload?: Buffer): Promise<PeerReply>;
}
