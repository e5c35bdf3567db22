/**
 * Start-up self-test of the erasure codec: encodes fixed inputs for a few profiles and compares every shard's
 * SHA-256 with golden values (the same ones as test/vectors/erasure/golden-shards.json, which the unit tests keep in
 * step), then loses m shards and checks they are rebuilt bit for bit. A WASM build that codes differently would make
 * shards written before unreadable after, so an OSD refuses to serve when this fails.
 */
import { createHash } from 'node:crypto';
import { StorageError } from '../common/errors.js';
import { Codec } from './codec.js';

export interface GoldenCase {
  readonly k: number;
  readonly m: number;
  readonly shardSize: number;
  /** SHA-256 (hex) of shards 0..k+m-1. */
  readonly shardSha256: readonly string[];
}

/** Deterministic input of a case: xorshift32 bytes seeded from (k, m, size), so every case differs. */
export function goldenInput(k: number, m: number, shardSize: number): Uint8Array[] {
  let x = (0x9e3779b9 ^ (k << 16) ^ (m << 8) ^ shardSize) >>> 0 || 1;
  return Array.from({ length: k }, () => {
    const shard = new Uint8Array(shardSize);
    for (let i = 0; i < shardSize; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      shard[i] = x & 0xff;
    }
    return shard;
  });
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** SHA-256 of every shard (data then parity) the codec produces for a case's input. */
export function computeShardHashes(k: number, m: number, shardSize: number): string[] {
  const data = goldenInput(k, m, shardSize);
  const parity = new Codec(k, m).encode(data);
  return [...data, ...parity].map(sha256Hex);
}

export const goldenCases: readonly GoldenCase[] = [
  // GOLDEN-BEGIN (equal to test/vectors/erasure/golden-shards.json; a unit test checks both)
  {
    k: 2,
    m: 1,
    shardSize: 1024,
    shardSha256: [
      '638144a4f6fc7ccf33b90e2cf8c6f36f5d8c3257a871e7e8da03659de1bcf1ee',
      '33ef959eb94848468e5a8ec5cf34f16046cca2f44f03cdf727545b309892b5dc',
      '96918b63044ddc51833fc58d5e9b40a8bdf5e958d00ebf5a47e5cc67f93473a5',
    ],
  },
  {
    k: 4,
    m: 2,
    shardSize: 4096,
    shardSha256: [
      '52a0939c5c891c0f2c166e7605e8297fadc5c648da6d93dca61a268468a4ec8e',
      'd9643b7aadc501f0dfe4d97698d9a0eb1c8b16c0e5fe3821578532f5e924d1cd',
      'f23cbb6e9f0ea11fed977873710019fdcf5aa4e6c63f013a7bc8478aca65b213',
      'bcd968ab2edb784a03b1ecf4f913157a20066096e091490a46366fce7dfabd62',
      '38718302a4bdafce3dd60c202745bdef78b9996cc7974b5c74549278bc7a6c1a',
      '9c97e730beb6de0e832b6f16fe633e5d85bdcb35db0df9a029755111c9f3b087',
    ],
  },
  {
    k: 8,
    m: 3,
    shardSize: 1000,
    shardSha256: [
      'b3cacdc8e1b1cdc69d030965adf6ece66cd79d8c532482c62ba005bd4f50df62',
      '22242902709a2b349c6cb8af254d08a2f7c101ac40a950876fdaee5846e79775',
      'ccf8c4cfaa749795181093e8ca3310704ce06618943e0aa56c9657a78a7d2278',
      '3ea0df6638008f91ca4bc467051d8ddc8fdafb9c7278d5f2227938c6ccf0627f',
      '32cda1681f55734066d1f5418ba513ee5a3bedf095aefb49f717e519ec37de8b',
      'dbff453e6525bc35df9360cfd522b6b9ba0cd2655bbfbc37200fe28b18988248',
      '86e94775e2de6a74519d4bb55178e55a36abeca261e6ecb06dc1eed4b5e22a13',
      'cb1d140c374298a1c69aba538ba169307f1436e82d22c00bc7de0dbe22e7aebf',
      'c44af1c9f7b18617515297aec54e9edc143ca416e6df16723aa253f3cabd2451',
      '6537ff550926f1d315a8e8c1d8a77d46a4348b89148ddfc4571af0af64842579',
      '662372841cdc1fbd8a172a68275c01eb118c010c106c3779cce4908982072e5e',
    ],
  },
  {
    k: 3,
    m: 2,
    shardSize: 1,
    shardSha256: [
      '19581e27de7ced00ff1ce50b2047e7a567c76b1cbaebabe5ef03f7c3017bb5b7',
      'd03502c43d74a30b936740a9517dc4ea2b2ad7168caa0a774cefe793ce0b33e7',
      'bd4fc42a21f1f860a1030e6eba23d53ecab71bd19297ab6c074381d4ecee0018',
      '2b4c342f5433ebe591a1da77e013d1b72475562d48578dca8b84bac6651c3cb9',
      'c4694f2e93d5c4e7d51f9c5deb75e6cc8be5e1114178c6a45b6fc2c566a0aa8c',
    ],
  },
  {
    k: 10,
    m: 4,
    shardSize: 777,
    shardSha256: [
      'e53c00df69118304d11e36e26cf9f37d9eb15c3b04e4a3230b2a60ddb7dbb658',
      '633260db948edbd6abfaf9c08c6934392ff3ffc140fc5751241669b5638740b1',
      '59fc63125dd6a14c17f41227047d4906cc6356348fa42d774339236154be3633',
      'ee8d6b5579e60d976bec59bbe9ace695b593be573a05311c6390eac4c65c01eb',
      '4def644b08b9f5af300c920e0c44fc6ff2681a936764d41b2379507fbe7061f7',
      'ad4959a7398f40c8e34a625bf67b4394735cb21f58f696b0dbc1bd26c5d255f8',
      'eace9032be9f807f59ce7bfd380341ba32fa5b17c9da8f04ed75b63058604c3f',
      'b39838552b635ff0b2ce681fbb3dd69a85a250c8ad8a3eb394b94c102e21a355',
      'e144c4ff38e1d3e7fc94f88f9216245066c8eea488aac39209d2971533ba6285',
      '1cbda73208fdab2286e967985939eb4db2e6adb63a2fe02f04b323415c5ddadc',
      '0d56c6c172ce3f3642d6732e926aa5dcba6d56c895312d7d24fe8861ae4926cd',
      '1602f1c983304ba158c47b42667b904de7c698858ade69c97fc79a0c3f93d3f1',
      '4a93142e49a92fde98189ec8eab2ba2ada44f112dafe089bf8ae6434c9fe0d2d',
      'fd98eaeceba870f189e93ce7bb8e13a05cf1fa30756ff8b0750b13c83e1b312a',
    ],
  },
  // GOLDEN-END
];

/** Runs the self-test; throws CORRUPT_DATA naming the first mismatch. Takes a few milliseconds. */
export function erasureSelfTest(cases: readonly GoldenCase[] = goldenCases): void {
  for (const c of cases) {
    const codec = new Codec(c.k, c.m);
    const data = goldenInput(c.k, c.m, c.shardSize);
    const all = [...data, ...codec.encode(data)];
    const hashes = all.map(sha256Hex);
    hashes.forEach((h, i) => {
      if (h !== c.shardSha256[i]) {
        throw new StorageError('CORRUPT_DATA', `erasure self-test failed: k=${c.k} m=${c.m} shard ${i} encodes to ${h}, expected ${c.shardSha256[i]}`);
      }
    });
    // Lose the first m shards (data, the harder case) and rebuild them.
    const lossy = all.map((s, i) => (i < c.m ? undefined : s));
    const rebuilt = codec.reconstruct(lossy);
    rebuilt.forEach((s, i) => {
      if (sha256Hex(s) !== c.shardSha256[i]) {
        throw new StorageError('CORRUPT_DATA', `erasure self-test failed: k=${c.k} m=${c.m} shard ${i} was not rebuilt correctly`);
      }
    });
  }
}
