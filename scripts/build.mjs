#!/usr/bin/env node
// Build: generate static protobuf code from src/protocol/*.proto, compile TypeScript into dist/, copy the generated
// JavaScript beside the compiled code. Incremental: protobuf generation runs only when a .proto changed.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const protoDir = join(root, 'src', 'protocol');
const genDir = join(protoDir, 'generated');
const genJs = join(genDir, 'shoal.js');
const genDts = join(genDir, 'shoal.d.ts');

function generateProtobuf() {
  const protos = readdirSync(protoDir).filter((f) => f.endsWith('.proto')).sort().map((f) => join(protoDir, f));
  const newest = Math.max(...protos.map((p) => statSync(p).mtimeMs), statSync(fileURLToPath(import.meta.url)).mtimeMs);
  if (existsSync(genJs) && existsSync(genDts) && statSync(genDts).mtimeMs >= newest) return;
  mkdirSync(genDir, { recursive: true });
  process.stderr.write('[build] generating protobuf code\n');
  run(bin('pbjs'), ['-p', protoDir, '-t', 'static-module', '-w', 'es6', '--force-number', '--no-delimited', '-o', genJs, ...protos]);
  // protobufjs is CommonJS: under Node's ESM loader its named exports are not visible, so import the default export,
  // and name the file with its extension as ESM resolution requires.
  const js = readFileSync(genJs, 'utf8').replace(
    /import (?:\* as )?\$protobuf from "protobufjs\/minimal(?:\.js)?";/,
    // 64-bit fields decode as JavaScript numbers (all of ours stay below 2^53): without Long, protobufjs reads them so.
    'import $protobuf from "protobufjs/minimal.js";\n$protobuf.util.Long = undefined;\n$protobuf.configure();',
  );
  writeFileSync(genJs, js);
  run(bin('pbts'), ['-o', genDts, genJs]);
  const dts = readFileSync(genDts, 'utf8').replace(/from "protobufjs"/g, 'from "protobufjs/minimal.js"');
  writeFileSync(genDts, dts);
}

function run(command, args) {
  try {
    execFileSync(command, args, { cwd: root, stdio: 'inherit' });
  } catch (error) {
    process.stderr.write(`[build] failed: ${command} ${args.join(' ')}\n`);
    process.exit(typeof error.status === 'number' ? error.status : 1);
  }
}

generateProtobuf();
run(bin('tsc'), ['-p', join(root, 'tsconfig.json')]);
mkdirSync(join(root, 'dist', 'src', 'protocol', 'generated'), { recursive: true });
copyFileSync(genJs, join(root, 'dist', 'src', 'protocol', 'generated', 'shoal.js'));
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
if (existsSync(cli)) chmodSync(cli, 0o755);
