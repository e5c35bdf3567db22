import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  completeMultipartUploadXml,
  copyObjectResultXml,
  copyPartResultXml,
  deleteResultXml,
  errorXml,
  escapeXml,
  initiateMultipartUploadXml,
  listBucketsXml,
  listMultipartUploadsXml,
  listObjectsV1Xml,
  listObjectsV2Xml,
  listPartsXml,
  locationXml,
  parseCompleteMultipartUpload,
  parseCreateBucketConfiguration,
  parseDeleteObjects,
  parseXml,
  s3UrlEncode,
  s3Xmlns,
  xmlChild,
  xmlChildText,
  type XmlElement,
} from '../../../gateway/s3/xml.js';
import { S3Error, type S3ErrorCode } from '../../../gateway/s3/s3-error.js';
import { seededRandom } from '../../helpers/seed.js';

const declaration = '<?xml version="1.0" encoding="UTF-8"?>';

function rejects(fn: () => unknown, code: S3ErrorCode, what: string): void {
  assert.throws(fn, (e) => e instanceof S3Error && e.code === code, what);
}

/** Characters XML 1.0 can carry (in keys: any of them, including CR, LF and TAB). */
const xmlCharArb = fc.oneof(
  fc.constantFrom('&', '<', '>', '"', "'", '\r', '\n', '\t', ' ', ']]>', '&amp;', '/', '+', '%', '\u{1f600}', '\u{10ffff}', '\ufffd'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 3 }).filter((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/u.test(s)),
);
const keyArb = fc.array(xmlCharArb, { minLength: 1, maxLength: 12 }).map((parts) => parts.join(''));

function fcSeed(t: Parameters<typeof seededRandom>[0]): number {
  return seededRandom(t).int(0, 0x7fff_ffff);
}

function texts(element: XmlElement, path: string[]): string[] {
  if (path.length === 0) return [element.text];
  return element.children.filter((c) => c.name === path[0]).flatMap((c) => texts(c, path.slice(1)));
}

/** The children of an element as [name, text] pairs. */
const pairs = (element: XmlElement): [string, string][] => element.children.map((c) => [c.name, c.text]);

const s3UrlDecode = (s: string): string => decodeURIComponent(s.replace(/\+/g, ' '));

// ---- request bodies ----

test('parseDeleteObjects: any keys round trip through escaped XML, with or without namespace and declaration', (t) => {
  const seed = fcSeed(t);
  fc.assert(
    fc.property(fc.array(keyArb, { minLength: 1, maxLength: 20 }), fc.boolean(), fc.boolean(), fc.boolean(), (keys, quiet, ns, decl) => {
      const body =
        `${decl ? `${declaration}\n` : ''}<Delete${ns ? ` xmlns="${s3Xmlns}"` : ''}>\n  <Quiet>${quiet}</Quiet>\n` +
        keys.map((k, i) => `  <Object><Key>${escapeXml(k)}</Key>${i % 2 === 1 ? `<VersionId>v${i}</VersionId>` : ''}</Object>\n`).join('') +
        '</Delete>\n';
      const parsed = parseDeleteObjects(body);
      assert.equal(parsed.quiet, quiet);
      assert.deepEqual(
        parsed.objects,
        keys.map((key, i) => (i % 2 === 1 ? { key, versionId: `v${i}` } : { key })),
      );
    }),
    { seed, numRuns: 500 },
  );
});

test('parseDeleteObjects: CDATA is literal, entities and character references are decoded, prefixes accepted', () => {
  const body = `<s3:Delete xmlns:s3="${s3Xmlns}"><s3:Object><s3:Key><![CDATA[a&amp;<b>]]>&#x41;&#66;&lt;&apos;</s3:Key></s3:Object></s3:Delete>`;
  assert.deepEqual(parseDeleteObjects(body), { quiet: false, objects: [{ key: "a&amp;<b>AB<'" }] });
  assert.deepEqual(parseDeleteObjects('<Delete><Object><Key> spaced </Key></Object><!-- c --></Delete><!-- after -->\n'), {
    quiet: false,
    objects: [{ key: ' spaced ' }],
  });
});

test('parseDeleteObjects: 1000 keys pass, 1001 and none are MalformedXML', () => {
  const body = (n: number) => `<Delete>${Array.from({ length: n }, (_, i) => `<Object><Key>k${i}</Key></Object>`).join('')}</Delete>`;
  assert.equal(parseDeleteObjects(body(1000)).objects.length, 1000);
  rejects(() => parseDeleteObjects(body(1001)), 'MalformedXML', '1001 keys');
  rejects(() => parseDeleteObjects(body(0)), 'MalformedXML', 'no keys');
  rejects(() => parseDeleteObjects('<Delete><Object><VersionId>x</VersionId></Object></Delete>'), 'MalformedXML', 'no Key');
  rejects(() => parseDeleteObjects('<Delete><Object><Key>a</Key><Key>b</Key></Object></Delete>'), 'MalformedXML', 'two Keys');
  rejects(() => parseDeleteObjects('<Delete><Quiet>yes</Quiet><Object><Key>a</Key></Object></Delete>'), 'MalformedXML', 'Quiet');
});

test('parsing rejects hostile and malformed documents with MalformedXML', () => {
  const hostile: [string, string][] = [
    ['billion laughs', '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]><Delete><Object><Key>&lol2;</Key></Object></Delete>'],
    ['external entity', '<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&xxe;</Key></Object></Delete>'],
    ['doctype alone', '<!doctype Delete><Delete><Object><Key>a</Key></Object></Delete>'],
    ['undeclared entity', '<Delete><Object><Key>&nbsp;</Key></Object></Delete>'],
    ['bare ampersand', '<Delete><Object><Key>a & b</Key></Object></Delete>'],
    ['invalid character reference', '<Delete><Object><Key>&#0;</Key></Object></Delete>'],
    ['surrogate reference', '<Delete><Object><Key>&#xD800;</Key></Object></Delete>'],
    ['wrong root', '<Delete2><Object><Key>a</Key></Object></Delete2>'],
    ['other request root', '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>x</ETag></Part></CompleteMultipartUpload>'],
    ['two roots', '<Delete><Object><Key>a</Key></Object></Delete><Delete/>'],
    ['trailing text', '<Delete><Object><Key>a</Key></Object></Delete>junk'],
    ['trailing text before a comment', '<Delete><Object><Key>a</Key></Object></Delete>junk<!-- x -->'],
    ['leading text', 'junk<Delete><Object><Key>a</Key></Object></Delete>'],
    ['mismatched tags', '<Delete><Object><Key>a</Kay></Object></Delete>'],
    ['unclosed', '<Delete><Object><Key>a</Key></Object>'],
    ['empty', ''],
    ['text only', 'hello'],
    ['json', '{"Delete": []}'],
    ['deep nesting', `<Delete>${'<a>'.repeat(20)}${'</a>'.repeat(20)}<Object><Key>a</Key></Object></Delete>`],
    ['very deep nesting', `<Delete>${'<a>'.repeat(100_000)}${'</a>'.repeat(100_000)}</Delete>`],
    ['huge attribute', `<Delete x="${'a'.repeat(2_000_000)}"><Object><Key>a</Key></Object></Delete>`],
    ['huge comment', `<Delete><!--${'a'.repeat(100_000)}--><Object><Key>a</Key></Object></Delete>`],
    ['repeated attribute', '<Delete a="1" a="2"><Object><Key>a</Key></Object></Delete>'],
  ];
  // (Time is not asserted here: a parser that blew up on these would exhaust the stack or hang the test instead.)
  for (const [what, body] of hostile) rejects(() => parseDeleteObjects(body), 'MalformedXML', what);
  rejects(() => parseXml('<a><b/></a>', 'b'), 'MalformedXML', 'parseXml with a root');
});

test('parseCreateBucketConfiguration: location constraint, namespaced or not; empty constraint is none', () => {
  assert.deepEqual(
    parseCreateBucketConfiguration(`${declaration}<CreateBucketConfiguration xmlns="${s3Xmlns}"><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>`),
    { locationConstraint: 'eu-west-1' },
  );
  assert.deepEqual(parseCreateBucketConfiguration('<CreateBucketConfiguration><LocationConstraint/></CreateBucketConfiguration>'), {});
  assert.deepEqual(parseCreateBucketConfiguration('<CreateBucketConfiguration/>'), {});
  rejects(() => parseCreateBucketConfiguration('<BucketConfiguration/>'), 'MalformedXML', 'wrong root');
});

test('parseCompleteMultipartUpload: parts with ETags and checksums; bad part numbers and order refused', () => {
  const part = (n: string, extra = '') => `<Part><PartNumber>${n}</PartNumber><ETag>"e${n}"</ETag>${extra}</Part>`;
  const body = (...parts: string[]) => `<CompleteMultipartUpload xmlns="${s3Xmlns}">${parts.join('')}</CompleteMultipartUpload>`;
  assert.deepEqual(parseCompleteMultipartUpload(body(part('1'), part('3', '<ChecksumCRC32>AAAAAA==</ChecksumCRC32><ChecksumSHA256>x=</ChecksumSHA256>'))), {
    parts: [
      { partNumber: 1, etag: '"e1"' },
      { partNumber: 3, etag: '"e3"', checksums: { CRC32: 'AAAAAA==', SHA256: 'x=' } },
    ],
  });
  assert.equal(parseCompleteMultipartUpload(body(part('10000'))).parts[0]!.partNumber, 10000);
  for (const n of ['1.5', 'abc', '-1', '', ' ', '1e3', '0x10', '+2', '1 2', '99999999999999999999']) {
    rejects(() => parseCompleteMultipartUpload(body(part(n))), 'MalformedXML', `part number ${JSON.stringify(n)}`);
  }
  rejects(() => parseCompleteMultipartUpload(body(part('0'))), 'InvalidArgument', 'part 0');
  rejects(() => parseCompleteMultipartUpload(body(part('10001'))), 'InvalidArgument', 'part 10001');
  rejects(() => parseCompleteMultipartUpload(body(part('2'), part('1'))), 'InvalidPartOrder', 'descending');
  rejects(() => parseCompleteMultipartUpload(body(part('2'), part('2'))), 'InvalidPartOrder', 'repeated');
  rejects(() => parseCompleteMultipartUpload(body()), 'MalformedXML', 'no parts');
  rejects(() => parseCompleteMultipartUpload(body('<Part><PartNumber>1</PartNumber></Part>')), 'MalformedXML', 'no ETag');
  rejects(() => parseCompleteMultipartUpload(body(part('1', '<PartNumber>2</PartNumber>'))), 'MalformedXML', 'two numbers');
  const many = Array.from({ length: 10_001 }, (_, i) => part(String(i + 1)));
  rejects(() => parseCompleteMultipartUpload(body(...many)), 'MalformedXML', '10001 parts');
});

// ---- responses ----

test('responses start with the declaration and carry the S3 namespace where AWS puts it', () => {
  const owner = { id: 'u1', displayName: 'User One' };
  const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
  const docs: [string, string, boolean][] = [
    [errorXml({ code: 'NoSuchKey', message: 'm', resource: '/b/k', requestId: 'r' }), 'Error', false],
    [listBucketsXml({ owner, buckets: [] }), 'ListAllMyBucketsResult', true],
    [listObjectsV1Xml({ name: 'b', prefix: '', marker: '', maxKeys: 1000, isTruncated: false, contents: [], commonPrefixes: [] }), 'ListBucketResult', true],
    [listObjectsV2Xml({ name: 'b', prefix: '', maxKeys: 1000, isTruncated: false, contents: [], commonPrefixes: [] }), 'ListBucketResult', true],
    [locationXml('eu-west-1'), 'LocationConstraint', true],
    [initiateMultipartUploadXml({ bucket: 'b', key: 'k', uploadId: 'u' }), 'InitiateMultipartUploadResult', true],
    [completeMultipartUploadXml({ location: 'http://h/b/k', bucket: 'b', key: 'k', etag: 'e-2' }), 'CompleteMultipartUploadResult', true],
    [copyObjectResultXml({ etag: 'e', lastModified: date }), 'CopyObjectResult', true],
    [copyPartResultXml({ etag: 'e', lastModified: date }), 'CopyPartResult', true],
    [deleteResultXml({ deleted: [], errors: [], quiet: false }), 'DeleteResult', true],
    [listPartsXml({ bucket: 'b', key: 'k', uploadId: 'u', owner, partNumberMarker: 0, maxParts: 1000, isTruncated: false, parts: [] }), 'ListPartsResult', true],
    [listMultipartUploadsXml({ bucket: 'b', prefix: '', maxUploads: 1000, isTruncated: false, uploads: [] }), 'ListMultipartUploadsResult', true],
  ];
  for (const [doc, root, namespaced] of docs) {
    assert.ok(doc.startsWith(`${declaration}\n<${root}${namespaced ? ` xmlns="${s3Xmlns}"` : ''}>`), doc);
    assert.equal(parseXml(doc, root).name, root);
  }
});

test('errorXml: code, message, details, resource, request id; all escaped', () => {
  const doc = parseXml(
    errorXml({ code: 'NoSuchKey', message: 'The <key> & "it"', resource: '/b/a&b', requestId: 'r1', details: { Key: 'a&b', 'Bad Name': 'dropped' } }),
    'Error',
  );
  assert.deepEqual(
    pairs(doc),
    [
      ['Code', 'NoSuchKey'],
      ['Message', 'The <key> & "it"'],
      ['Key', 'a&b'],
      ['Resource', '/b/a&b'],
      ['RequestId', 'r1'],
    ],
  );
});

test('listObjectsV2Xml: any keys survive escaping; url encoding decodes back; dates, ETags, owners', (t) => {
  const seed = fcSeed(t);
  const date = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6));
  fc.assert(
    fc.property(fc.array(keyArb, { minLength: 1, maxLength: 10 }), keyArb, keyArb, fc.boolean(), (keys, prefix, delimiter, url) => {
      const doc = parseXml(
        listObjectsV2Xml({
          name: 'bucket',
          prefix,
          delimiter,
          startAfter: prefix,
          maxKeys: 7,
          isTruncated: true,
          nextContinuationToken: 'tok',
          ...(url ? { encodingType: 'url' as const } : {}),
          contents: keys.map((key) => ({ key, lastModified: date, etag: 'abc', size: 5 })),
          commonPrefixes: [prefix + delimiter],
        }),
        'ListBucketResult',
      );
      const decode = url ? s3UrlDecode : (s: string) => s;
      assert.deepEqual(texts(doc, ['Contents', 'Key']).map(decode), keys);
      assert.deepEqual(texts(doc, ['CommonPrefixes', 'Prefix']).map(decode), [prefix + delimiter]);
      for (const name of ['Prefix', 'StartAfter']) assert.equal(decode(xmlChildText(doc, name)!), prefix);
      assert.equal(decode(xmlChildText(doc, 'Delimiter')!), delimiter);
      assert.equal(xmlChildText(doc, 'KeyCount'), String(keys.length + 1));
      assert.equal(xmlChildText(doc, 'EncodingType'), url ? 'url' : undefined);
      if (url) for (const k of texts(doc, ['Contents', 'Key'])) assert.match(k, /^[A-Za-z0-9\-_.*/+%]*$/);
    }),
    { seed, numRuns: 300 },
  );
  const v2 = parseXml(
    listObjectsV2Xml({
      name: 'b',
      prefix: '',
      maxKeys: 1,
      isTruncated: false,
      owner: { id: 'o', displayName: 'O' },
      contents: [{ key: 'k', lastModified: date, etag: '"quoted"', size: 0 }],
      commonPrefixes: [],
    }),
  );
  const contents = xmlChild(v2, 'Contents')!;
  assert.deepEqual(
    pairs(contents),
    [
      ['Key', 'k'],
      ['LastModified', '2024-01-02T03:04:05.006Z'],
      ['ETag', '"quoted"'],
      ['Size', '0'],
      ['Owner', ''],
      ['StorageClass', 'STANDARD'],
    ],
  );
  assert.equal(xmlChildText(xmlChild(contents, 'Owner')!, 'ID'), 'o');
});

test('listObjectsV1Xml: markers, NextMarker only when given, url encoding as S3 does it', () => {
  const doc = parseXml(
    listObjectsV1Xml({
      name: 'b',
      prefix: 'a b/',
      delimiter: '/',
      marker: 'a b/c~',
      nextMarker: 'a b/d+e',
      maxKeys: 2,
      isTruncated: true,
      encodingType: 'url',
      contents: [{ key: 'a b/é!', lastModified: new Date(0), etag: 'x', size: 1 }],
      commonPrefixes: ['a b/f/'],
    }),
    'ListBucketResult',
  );
  assert.deepEqual(
    doc.children.map((c) => c.name),
    ['Name', 'Prefix', 'Marker', 'NextMarker', 'MaxKeys', 'Delimiter', 'IsTruncated', 'EncodingType', 'Contents', 'CommonPrefixes'],
  );
  assert.equal(xmlChildText(doc, 'Prefix'), 'a+b/');
  assert.equal(xmlChildText(doc, 'Marker'), 'a+b/c%7E');
  assert.equal(xmlChildText(doc, 'NextMarker'), 'a+b/d%2Be');
  assert.equal(texts(doc, ['Contents', 'Key'])[0], 'a+b/%C3%A9%21');
  assert.equal(s3UrlEncode("a*b(c)'~ /"), 'a*b%28c%29%27%7E+/');
  const plain = parseXml(listObjectsV1Xml({ name: 'b', prefix: '', marker: '', maxKeys: 1000, isTruncated: false, contents: [], commonPrefixes: [] }));
  assert.equal(xmlChild(plain, 'NextMarker'), undefined);
  assert.equal(xmlChild(plain, 'Delimiter'), undefined);
});

test('escapeXml: control characters as character references, lone surrogates replaced', () => {
  assert.equal(escapeXml('a\r\nb\t<&>"\''), 'a&#xD;&#xA;b&#x9;&lt;&amp;&gt;&quot;&apos;');
  assert.equal(escapeXml('x\ud800y\u{1f600}'), 'x\ufffdy\u{1f600}');
  assert.equal(parseXml(`<K>${escapeXml('a\r\nb')}</K>`).text, 'a\r\nb');
});

test('listBucketsXml, deleteResultXml, multipart responses: contents', () => {
  const owner = { id: 'id&1', displayName: 'name<1>' };
  const date = new Date(Date.UTC(2023, 11, 31, 23, 59, 59, 999));
  const buckets = parseXml(listBucketsXml({ owner, buckets: [{ name: 'a', creationDate: date }, { name: 'b', creationDate: date }] }));
  assert.deepEqual(texts(buckets, ['Owner', 'ID']), ['id&1']);
  assert.deepEqual(texts(buckets, ['Owner', 'DisplayName']), ['name<1>']);
  assert.deepEqual(texts(buckets, ['Buckets', 'Bucket', 'Name']), ['a', 'b']);
  assert.deepEqual(texts(buckets, ['Buckets', 'Bucket', 'CreationDate']), ['2023-12-31T23:59:59.999Z', '2023-12-31T23:59:59.999Z']);

  const result = { deleted: [{ key: 'a' }, { key: 'b', versionId: 'v' }], errors: [{ key: 'c', code: 'AccessDenied', message: 'no' }] };
  const loud = parseXml(deleteResultXml({ ...result, quiet: false }));
  assert.deepEqual(texts(loud, ['Deleted', 'Key']), ['a', 'b']);
  assert.deepEqual(texts(loud, ['Deleted', 'VersionId']), ['v']);
  assert.deepEqual(texts(loud, ['Error', 'Code']), ['AccessDenied']);
  const quiet = parseXml(deleteResultXml({ ...result, quiet: true }));
  assert.deepEqual(quiet.children.map((c) => c.name), ['Error']);

  const complete = parseXml(completeMultipartUploadXml({ location: 'http://h/b/k', bucket: 'b', key: 'k', etag: 'abc-2', checksums: { CRC32: 'q==' } }));
  assert.deepEqual(pairs(complete), [
    ['Location', 'http://h/b/k'],
    ['Bucket', 'b'],
    ['Key', 'k'],
    ['ETag', '"abc-2"'],
    ['ChecksumCRC32', 'q=='],
  ]);
  assert.equal(xmlChildText(parseXml(initiateMultipartUploadXml({ bucket: 'b', key: 'k&', uploadId: 'u' })), 'Key'), 'k&');
  assert.equal(xmlChildText(parseXml(copyObjectResultXml({ etag: 'e', lastModified: date })), 'ETag'), '"e"');
  assert.equal(xmlChildText(parseXml(copyPartResultXml({ etag: 'e', lastModified: date })), 'LastModified'), '2023-12-31T23:59:59.999Z');
  assert.equal(parseXml(locationXml('')).text, '');

  const parts = parseXml(
    listPartsXml({
      bucket: 'b',
      key: 'k',
      uploadId: 'u',
      owner,
      partNumberMarker: 0,
      nextPartNumberMarker: 2,
      maxParts: 2,
      isTruncated: true,
      parts: [1, 2].map((n) => ({ partNumber: n, lastModified: date, etag: `e${n}`, size: n * 10 })),
    }),
  );
  assert.deepEqual(texts(parts, ['Part', 'PartNumber']), ['1', '2']);
  assert.deepEqual(texts(parts, ['Part', 'ETag']), ['"e1"', '"e2"']);
  assert.deepEqual(texts(parts, ['Initiator', 'ID']), ['id&1']);
  assert.equal(xmlChildText(parts, 'NextPartNumberMarker'), '2');

  const uploads = parseXml(
    listMultipartUploadsXml({
      bucket: 'b',
      keyMarker: 'k m',
      uploadIdMarker: 'u0',
      prefix: '',
      delimiter: '/',
      maxUploads: 10,
      isTruncated: false,
      encodingType: 'url',
      uploads: [{ key: 'a b', uploadId: 'u1', owner, initiated: date }],
      commonPrefixes: ['d/'],
    }),
  );
  assert.equal(xmlChildText(uploads, 'KeyMarker'), 'k+m');
  assert.deepEqual(texts(uploads, ['Upload', 'Key']), ['a+b']);
  assert.deepEqual(texts(uploads, ['Upload', 'Initiated']), ['2023-12-31T23:59:59.999Z']);
  assert.deepEqual(texts(uploads, ['CommonPrefixes', 'Prefix']), ['d/']);
});
