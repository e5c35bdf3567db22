// The import table of ../shared/DESIGN.md, enforced. `npm run lint` (part of `npm test`) fails on any violation.
/** Folders of ours that a given folder must not import. */
const ours = '^(src|monitor|osd|gateway|fuse|benchmarks|test)/';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'common-imports-nothing-of-ours',
      severity: 'error',
      from: { path: '^src/common/' },
      to: { path: ours, pathNot: '^src/common/' },
    },
    {
      name: 'protocol-imports-common-only',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { path: ours, pathNot: '^src/(common|protocol)/' },
    },
    {
      name: 'crush-imports-common-protocol',
      severity: 'error',
      from: { path: '^src/crush/' },
      to: { path: ours, pathNot: '^src/(common|protocol|crush)/' },
    },
    {
      name: 'erasure-imports-common',
      severity: 'error',
      from: { path: '^src/erasure/' },
      to: { path: ours, pathNot: '^src/(common|erasure)/' },
    },
    {
      name: 'consensus-imports-common-protocol',
      severity: 'error',
      from: { path: '^src/consensus/' },
      to: { path: ours, pathNot: '^src/(common|protocol|consensus)/' },
    },
    {
      name: 'net-imports-common-protocol',
      severity: 'error',
      from: { path: '^src/net/' },
      to: { path: ours, pathNot: '^src/(common|protocol|net)/' },
    },
    {
      name: 'client-imports-lower-layers',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: ours, pathNot: '^src/(common|protocol|crush|erasure|consensus|net|client)/' },
    },
    {
      name: 'block-imports-client',
      severity: 'error',
      from: { path: '^src/block/' },
      to: { path: ours, pathNot: '^src/(common|protocol|client|block)/' },
    },
    {
      name: 'only-cli-imports-daemons',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^(monitor|osd|gateway|fuse)/' },
    },
    {
      name: 'daemons-import-src-not-cli-or-each-other',
      severity: 'error',
      from: { path: '^(monitor|osd)/' },
      to: { path: '^(src/cli|gateway|fuse|benchmarks|test)/' },
    },
    {
      name: 'monitor-and-osd-independent',
      severity: 'error',
      from: { path: '^monitor/' },
      to: { path: '^osd/' },
    },
    {
      name: 'osd-and-monitor-independent',
      severity: 'error',
      from: { path: '^osd/' },
      to: { path: '^monitor/' },
    },
    {
      name: 'front-ends-import-src-index-only',
      severity: 'error',
      from: { path: '^(gateway|fuse)/' },
      to: { path: ours, pathNot: ['^src/index\\.ts$', '^(gateway/s3|gateway/nbd|fuse)/'] },
    },
    {
      name: 'front-ends-stay-in-their-folder',
      severity: 'error',
      from: { path: '^gateway/s3/' },
      to: { path: '^(gateway/nbd|fuse)/' },
    },
    {
      name: 'grpc-only-in-net',
      severity: 'error',
      from: { pathNot: '^(src/net|test|benchmarks)/' },
      to: { path: 'node_modules/@grpc/' },
    },
    {
      name: 'protobufjs-only-in-protocol',
      severity: 'error',
      from: { pathNot: '^(src/protocol|test|benchmarks)/' },
      to: { path: 'node_modules/protobufjs/' },
    },
    {
      name: 'level-only-in-stores',
      severity: 'error',
      from: { pathNot: '^(monitor/store|osd/store|test|benchmarks)' },
      to: { path: 'node_modules/(level|classic-level|abstract-level)/' },
    },
    {
      name: 'reed-solomon-only-in-erasure',
      severity: 'error',
      from: { pathNot: '^(src/erasure|test|benchmarks)/' },
      to: { path: 'node_modules/@subspace/' },
    },
    {
      name: 'crc32-only-in-common',
      severity: 'error',
      from: { pathNot: '^(src/common/crc\\.ts$|test/|benchmarks/)' },
      to: { path: 'node_modules/@node-rs/crc32' },
    },
    {
      name: 'fuse-native-only-in-adapter',
      severity: 'error',
      from: { pathNot: '^fuse/adapter' },
      to: { path: 'node_modules/fuse-native/' },
    },
    {
      name: 'fast-xml-parser-only-in-s3-xml',
      severity: 'error',
      from: { pathNot: '^(gateway/s3/xml\\.ts$|test/|benchmarks/)' },
      to: { path: 'node_modules/fast-xml-parser/' },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // node_modules is not followed but not excluded either: excluding it would hide the third-party rules above.
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)dist/|src/protocol/generated/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
