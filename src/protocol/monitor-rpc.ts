/** The monitor's gRPC API (service shoal.Monitor) and the versioned encoding of commands in the Raft log. */
import { decodeMessage } from './cluster-map.js';
import { shoal } from './generated/shoal.js';
import { protobufCodec, serverStream, unary } from './rpc.js';
import { readMarker, unsupportedVersion, withMarker } from './versioned.js';

const service = 'shoal.Monitor';
const codec = <T>(type: { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T }, name: string) =>
  protobufCodec<T>(type, name);

export type MonitorCommand = shoal.MonitorCommand.$Properties;
export type CommandName = NonNullable<shoal.MonitorCommand['command']>;

export const monitorRpc = {
  getMap: unary(service, 'GetMap', codec(shoal.GetMapRequest, 'GetMapRequest'), codec(shoal.MapReply, 'MapReply')),
  subscribe: serverStream(
    service,
    'Subscribe',
    codec(shoal.SubscribeRequest, 'SubscribeRequest'),
    codec(shoal.MapUpdate, 'MapUpdate'),
  ),
  command: unary(service, 'Command', codec(shoal.CommandRequest, 'CommandRequest'), codec(shoal.CommandReply, 'CommandReply')),
  raft: unary(service, 'Raft', codec(shoal.RaftBatch, 'RaftBatch'), codec(shoal.Empty, 'Empty')),
  heartbeat: unary(service, 'Heartbeat', codec(shoal.OsdHeartbeat, 'OsdHeartbeat'), codec(shoal.HeartbeatReply, 'HeartbeatReply')),
  failureReport: unary(service, 'FailureReport', codec(shoal.FailureReport, 'FailureReport'), codec(shoal.Empty, 'Empty')),
  status: unary(service, 'Status', codec(shoal.Empty, 'Empty'), codec(shoal.MonitorStatus, 'MonitorStatus')),
  stats: unary(service, 'Stats', codec(shoal.Empty, 'Empty'), codec(shoal.StatsReply, 'StatsReply')),
} as const;

const commandVersion = 1;

export function encodeMonitorCommand(command: MonitorCommand): Buffer {
  return withMarker('monitorCommand', commandVersion, shoal.MonitorCommand.encode(command).finish());
}

export function decodeMonitorCommand(bytes: Uint8Array): shoal.MonitorCommand {
  const { version, body } = readMarker('monitorCommand', bytes);
  if (version !== commandVersion) throw unsupportedVersion('monitorCommand', version);
  return decodeMessage('monitorCommand', () => shoal.MonitorCommand.decode(body));
}

/** The name of the command a MonitorCommand carries (which oneof member is set), or undefined when none is. */
export function commandName(command: MonitorCommand): CommandName | undefined {
  const names: CommandName[] = [
    'init', 'poolCreate', 'poolRm', 'poolSet', 'osdCreate', 'osdRm', 'osdOut', 'osdIn', 'osdReweight', 'osdDown',
    'osdBoot', 'crushAddBucket', 'crushMove', 'crushSetWeight', 'flagSet',
  ];
  return names.find((name) => command[name] !== undefined && command[name] !== null);
}
