/**
 * S3 XML: parsing request bodies (strictly, with limits) and building response bodies. Pure: no I/O.
 *
 * Parsing runs fast-xml-parser (the only importer of that package) with entity processing off; DOCTYPE declarations
 * are refused outright, the five predefined entities and character references are decoded here, any other entity is
 * MalformedXML. Building is done here by hand, so that the escaping and the element order are exactly ours.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { S3Error } from './s3-error.js';

/** The namespace AWS puts on the root of most response bodies and accepts (or not) on request bodies. */
export const s3Xmlns = 'http://s3.amazonaws.com/doc/2006-03-01/';

/** Limits of the parser beyond the body size (which the caller bounds before reading the body). */
export const xmlLimits = {
  /** Deepest element nesting accepted (S3 request bodies need 3 or 4). */
  depthMax: 16,
  /** Longest markup accepted between a `<` and the next `>` (tags with attributes, comments, CDATA sections). */
  markupCharsMax: 4096,
  /** Keys in one DeleteObjects request. */
  deleteKeysMax: 1000,
  /** Parts in one CompleteMultipartUpload request, and the highest part number. */
  partsMax: 10_000,
} as const;

// ---------------------------------------------------------------------------------------------------------------
// Parsing

/** One element of a parsed document: its local name (namespace prefix removed), child elements and text content. */
export interface XmlElement {
  readonly name: string;
  readonly children: readonly XmlElement[];
  /** The element's own character data (text and CDATA, entities decoded), not that of its children. */
  readonly text: string;
}

function malformed(detail: string): S3Error {
  return new S3Error(
    'MalformedXML',
    `The XML you provided was not well-formed or did not validate against our published schema (${detail}).`,
  );
}

const parser = new XMLParser({
  preserveOrder: true,
  cdataPropName: '#cdata',
  processEntities: false,
  htmlEntities: false,
  ignoreAttributes: true,
  trimValues: false,
  parseTagValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  removeNSPrefix: true,
  maxNestedTags: xmlLimits.depthMax,
});

const predefined: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Whether a code point may appear in an XML 1.0 document (the `Char` production). */
function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

/** Decodes the predefined entities and character references; anything else is MalformedXML. */
function decodeText(raw: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&([^;&]{0,12});/g, (_, name: string) => {
    const named = predefined[name];
    if (named !== undefined) return named;
    const m = /^#(?:x([0-9a-fA-F]{1,6})|([0-9]{1,7}))$/.exec(name);
    if (m === null) throw malformed(`entity &${name}; is not allowed`);
    const cp = m[1] !== undefined ? parseInt(m[1], 16) : Number(m[2]);
    if (!isXmlChar(cp)) throw malformed(`character reference &${name}; is not an XML character`);
    return String.fromCodePoint(cp);
  });
}

/** Refuses markup longer than the limit, so a huge attribute or comment is rejected before the parser sees it. */
function checkMarkupLengths(xml: string): void {
  for (let open = xml.indexOf('<'); open >= 0; open = xml.indexOf('<', open + 1)) {
    const close = xml.indexOf('>', open);
    if (close < 0) throw malformed('unterminated markup');
    if (close - open > xmlLimits.markupCharsMax) throw malformed(`markup longer than ${xmlLimits.markupCharsMax} characters`);
    open = close;
  }
}

/**
 * Refuses anything but comments, processing instructions and white space after the root element (fast-xml-parser
 * drops trailing text silently).
 */
function checkTail(xml: string): void {
  let s = xml.trimEnd();
  for (;;) {
    if (s.endsWith('-->')) s = s.slice(0, Math.max(0, s.lastIndexOf('<!--'))).trimEnd();
    else if (s.endsWith('?>')) s = s.slice(0, Math.max(0, s.lastIndexOf('<?'))).trimEnd();
    else break;
  }
  const last = s.slice(s.lastIndexOf('<'));
  if (!/^<\/[^\s<>]+\s*>$/.test(last) && !/^<[^<]*\/>$/.test(last)) throw malformed('content after the root element');
}

type FxpNode = Record<string, unknown>;

function toElement(name: string, nodes: unknown): XmlElement {
  const children: XmlElement[] = [];
  let text = '';
  for (const node of nodes as FxpNode[]) {
    for (const [key, value] of Object.entries(node)) {
      if (key === ':@') continue;
      if (key === '#text') text += decodeText(String(value));
      else if (key === '#cdata') for (const part of value as FxpNode[]) text += String(part['#text'] ?? '');
      else children.push(toElement(key, value));
    }
  }
  return { name, children, text };
}

/**
 * Parses a whole document into its root element. Not well-formed, a DOCTYPE, unknown entities, more than one root,
 * text outside the root, nesting deeper than `xmlLimits.depthMax` or markup longer than `xmlLimits.markupCharsMax`
 * → S3Error('MalformedXML'). With `root`, a root element of another local name is MalformedXML too.
 */
export function parseXml(xml: string, root?: string): XmlElement {
  if (/<!DOCTYPE/i.test(xml) || /<!ENTITY/i.test(xml)) throw malformed('DOCTYPE and entity declarations are not allowed');
  checkMarkupLengths(xml);
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw malformed(valid.err.msg);
  checkTail(xml);
  let nodes: FxpNode[];
  try {
    nodes = parser.parse(xml) as FxpNode[];
  } catch (error) {
    throw malformed(error instanceof Error ? error.message : 'parse error');
  }
  const top = toElement('#document', nodes);
  if (top.children.length !== 1 || top.text.trim() !== '') throw malformed('a document has exactly one root element');
  const element = top.children[0]!;
  if (root !== undefined && element.name !== root) throw malformed(`the root element must be ${root}, not ${element.name}`);
  return element;
}

/** The one child of that name, undefined if absent; more than one → MalformedXML. */
export function xmlChild(element: XmlElement, name: string): XmlElement | undefined {
  const found = element.children.filter((c) => c.name === name);
  if (found.length > 1) throw malformed(`more than one ${name} in ${element.name}`);
  return found[0];
}

/** The text of the one child of that name (undefined if absent). */
export function xmlChildText(element: XmlElement, name: string): string | undefined {
  return xmlChild(element, name)?.text;
}

/** Body of CreateBucket. An empty body is the caller's business (it means no configuration). */
export function parseCreateBucketConfiguration(xml: string): { locationConstraint?: string } {
  const root = parseXml(xml, 'CreateBucketConfiguration');
  const location = xmlChildText(root, 'LocationConstraint')?.trim();
  return location === undefined || location === '' ? {} : { locationConstraint: location };
}

function parseBoolean(text: string, what: string): boolean {
  const t = text.trim().toLowerCase();
  if (t === 'true') return true;
  if (t === 'false') return false;
  throw malformed(`${what} must be true or false`);
}

/** Body of DeleteObjects: 1 to 1000 objects, each with a Key (keys keep their white space). */
export function parseDeleteObjects(xml: string): { quiet: boolean; objects: { key: string; versionId?: string }[] } {
  const root = parseXml(xml, 'Delete');
  const quietText = xmlChildText(root, 'Quiet');
  const quiet = quietText === undefined ? false : parseBoolean(quietText, 'Quiet');
  const objects: { key: string; versionId?: string }[] = [];
  for (const object of root.children) {
    if (object.name !== 'Object') continue;
    if (objects.length === xmlLimits.deleteKeysMax) throw malformed(`more than ${xmlLimits.deleteKeysMax} keys`);
    const key = xmlChildText(object, 'Key');
    if (key === undefined || key === '') throw malformed('an Object without a Key');
    const versionId = xmlChildText(object, 'VersionId');
    objects.push(versionId === undefined || versionId === '' ? { key } : { key, versionId });
  }
  if (objects.length === 0) throw malformed('no Object to delete');
  return { quiet, objects };
}

/** The checksum elements a CompleteMultipartUpload part may carry, keyed by algorithm (`CRC32`, `SHA256`, …). */
const checksumElement = /^Checksum([A-Z0-9]+)$/;

/**
 * Body of CompleteMultipartUpload: 1 to 10000 parts in strictly ascending part order. PartNumber must be a decimal
 * integer (else MalformedXML) between 1 and 10000 (else InvalidArgument); out of order → InvalidPartOrder. ETags are
 * returned as sent (quoted or not); checksums are keyed by algorithm name (`CRC32`, `CRC32C`, `SHA1`, `SHA256`, …).
 */
export function parseCompleteMultipartUpload(xml: string): {
  parts: { partNumber: number; etag: string; checksums?: Record<string, string> }[];
} {
  const root = parseXml(xml, 'CompleteMultipartUpload');
  const parts: { partNumber: number; etag: string; checksums?: Record<string, string> }[] = [];
  for (const part of root.children) {
    if (part.name !== 'Part') continue;
    if (parts.length === xmlLimits.partsMax) throw malformed(`more than ${xmlLimits.partsMax} parts`);
    const numberText = xmlChildText(part, 'PartNumber')?.trim();
    if (numberText === undefined || !/^[0-9]{1,9}$/.test(numberText)) throw malformed('PartNumber must be an integer');
    const partNumber = Number(numberText);
    if (partNumber < 1 || partNumber > xmlLimits.partsMax) {
      throw new S3Error('InvalidArgument', `Part number must be an integer between 1 and ${xmlLimits.partsMax}, inclusive`, {
        ArgumentName: 'PartNumber',
        ArgumentValue: numberText,
      });
    }
    const previous = parts[parts.length - 1];
    if (previous !== undefined && previous.partNumber >= partNumber) {
      throw new S3Error('InvalidPartOrder', 'The list of parts was not in ascending order. The parts list must be specified in order by part number.');
    }
    const etag = xmlChildText(part, 'ETag')?.trim();
    if (etag === undefined || etag === '') throw malformed('a Part without an ETag');
    const checksums: Record<string, string> = {};
    for (const c of part.children) {
      const m = checksumElement.exec(c.name);
      if (m === null) continue;
      if (checksums[m[1]!] !== undefined) throw malformed(`more than one ${c.name} in a Part`);
      checksums[m[1]!] = c.text.trim();
    }
    parts.push(Object.keys(checksums).length > 0 ? { partNumber, etag, checksums } : { partNumber, etag });
  }
  if (parts.length === 0) throw malformed('no Part');
  return { parts };
}

// ---------------------------------------------------------------------------------------------------------------
// Building

const declaration = '<?xml version="1.0" encoding="UTF-8"?>\n';

/**
 * Escapes text for element content and attribute values: the five XML specials as entities; CR, LF, TAB and the
 * other control characters as character references (as S3 does, so a CR in a key survives line-end normalisation).
 * Lone surrogates cannot be encoded in UTF-8 and become U+FFFD.
 */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"'\u0000-\u001f\u007f\ud800-\udfff]/gu, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&apos;';
      default: {
        const cp = c.codePointAt(0)!;
        if (cp >= 0xd800 && cp <= 0xdfff) return '\ufffd';
        return `&#x${cp.toString(16).toUpperCase()};`;
      }
    }
  });
}

type Value = string | number | boolean | Date | undefined;

function valueText(value: Exclude<Value, undefined>): string {
  return value instanceof Date ? value.toISOString() : escapeXml(String(value));
}

/** `<name>value</name>` (escaped; dates as ISO 8601 with milliseconds, Z), or nothing if value is undefined. */
function leaf(name: string, value: Value): string {
  return value === undefined ? '' : `<${name}>${valueText(value)}</${name}>`;
}

/** `<name>children</name>` from already built children. */
function node(name: string, ...children: string[]): string {
  return `<${name}>${children.join('')}</${name}>`;
}

function document(root: string, namespaced: boolean, ...children: string[]): string {
  return `${declaration}<${root}${namespaced ? ` xmlns="${s3Xmlns}"` : ''}>${children.join('')}</${root}>`;
}

/** An ETag as S3 shows it: in double quotes (added unless already there). */
export function quoteEtag(etag: string): string {
  return etag.startsWith('"') && etag.endsWith('"') && etag.length >= 2 ? etag : `"${etag}"`;
}

/**
 * URL-encoding of names in listings with `encoding-type=url`, as S3 does it: UTF-8 bytes percent-encoded (upper-case
 * hex) except letters, digits, `-`, `_`, `.`, `*` and `/`; space as `+`. A client decodes it with form decoding (unquote_plus).
 */
export function s3UrlEncode(text: string): string {
  return encodeURIComponent(text.replace(/[\ud800-\udfff]/gu, '\ufffd'))
    .replace(/%20/g, '+')
    .replace(/%2F/g, '/')
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export interface S3Owner {
  id: string;
  displayName: string;
}

function owner(name: string, o: S3Owner | undefined): string {
  return o === undefined ? '' : node(name, leaf('ID', o.id), leaf('DisplayName', o.displayName));
}

/** The body of an error response (no namespace, as AWS sends it). Details become elements after Message. */
export function errorXml(e: { code: string; message: string; resource?: string; requestId?: string; hostId?: string; details?: Record<string, string> }): string {
  const details = Object.entries(e.details ?? {})
    .filter(([name]) => /^[A-Za-z][A-Za-z0-9]*$/.test(name))
    .map(([name, value]) => leaf(name, value));
  return document('Error', false, leaf('Code', e.code), leaf('Message', e.message), ...details, leaf('Resource', e.resource), leaf('RequestId', e.requestId), leaf('HostId', e.hostId));
}

/** ListBuckets (GET /). */
export function listBucketsXml(p: { owner: S3Owner; buckets: readonly { name: string; creationDate: Date }[] }): string {
  return document(
    'ListAllMyBucketsResult',
    true,
    owner('Owner', p.owner),
    node('Buckets', ...p.buckets.map((b) => node('Bucket', leaf('Name', b.name), leaf('CreationDate', b.creationDate)))),
  );
}

/** One object in a listing. */
export interface ListedObject {
  key: string;
  lastModified: Date;
  etag: string;
  size: number;
  /** Defaults to STANDARD. */
  storageClass?: string;
  /** This object's owner; overrides the listing's `owner`. */
  owner?: S3Owner;
}

/** What both listing versions share. Names (keys, prefixes, delimiter, markers) are given decoded. */
export interface ListObjectsCommon {
  /** The bucket name. */
  name: string;
  prefix: string;
  delimiter?: string;
  maxKeys: number;
  isTruncated: boolean;
  /** 'url': names in the body are URL-encoded (s3UrlEncode) and EncodingType is echoed. */
  encodingType?: 'url';
  contents: readonly ListedObject[];
  commonPrefixes: readonly string[];
  /**
   * The owner shown in every Contents (S3 shows Owner always in v1, in v2 only with fetch-owner=true): pass it then.
   * Without it, only objects that carry their own owner show one.
   */
  owner?: S3Owner;
}

/** The encoder of names for a listing: s3UrlEncode with encoding-type=url, identity otherwise. */
function nameEncoder(encodingType: 'url' | undefined): (s: string | undefined) => string | undefined {
  return (s) => (s === undefined || encodingType !== 'url' ? s : s3UrlEncode(s));
}

/** A ListBucketResult: Name, Prefix, the version's own elements, then what both versions share. */
function listBucketResult(p: ListObjectsCommon, versionElements: (name: (s: string | undefined) => string | undefined) => string[]): string {
  const name = nameEncoder(p.encodingType);
  const contents = p.contents.map((o) =>
    node(
      'Contents',
      leaf('Key', name(o.key)),
      leaf('LastModified', o.lastModified),
      leaf('ETag', quoteEtag(o.etag)),
      leaf('Size', o.size),
      owner('Owner', o.owner ?? p.owner),
      leaf('StorageClass', o.storageClass ?? 'STANDARD'),
    ),
  );
  return document(
    'ListBucketResult',
    true,
    leaf('Name', p.name),
    leaf('Prefix', name(p.prefix)),
    ...versionElements(name),
    leaf('MaxKeys', p.maxKeys),
    leaf('Delimiter', name(p.delimiter)),
    leaf('IsTruncated', p.isTruncated),
    leaf('EncodingType', p.encodingType),
    ...contents,
    ...p.commonPrefixes.map((cp) => node('CommonPrefixes', leaf('Prefix', name(cp)))),
  );
}

/** ListObjects (v1). NextMarker is sent only when given (S3 sends it when truncated and a delimiter was used). */
export function listObjectsV1Xml(p: ListObjectsCommon & { marker: string; nextMarker?: string }): string {
  return listBucketResult(p, (name) => [leaf('Marker', name(p.marker)), leaf('NextMarker', name(p.nextMarker))]);
}

/** ListObjectsV2. KeyCount defaults to objects plus common prefixes. Tokens are opaque and never URL-encoded. */
export function listObjectsV2Xml(
  p: ListObjectsCommon & { continuationToken?: string; nextContinuationToken?: string; startAfter?: string; keyCount?: number },
): string {
  return listBucketResult(p, (name) => [
    leaf('ContinuationToken', p.continuationToken),
    leaf('NextContinuationToken', p.nextContinuationToken),
    leaf('StartAfter', name(p.startAfter)),
    leaf('KeyCount', p.keyCount ?? p.contents.length + p.commonPrefixes.length),
  ]);
}

/** GetBucketLocation. Pass '' for us-east-1 (AWS answers an empty LocationConstraint there). */
export function locationXml(region: string): string {
  return `${declaration}<LocationConstraint xmlns="${s3Xmlns}">${escapeXml(region)}</LocationConstraint>`;
}

/** CreateMultipartUpload. */
export function initiateMultipartUploadXml(p: { bucket: string; key: string; uploadId: string }): string {
  return document('InitiateMultipartUploadResult', true, leaf('Bucket', p.bucket), leaf('Key', p.key), leaf('UploadId', p.uploadId));
}

/** CompleteMultipartUpload. Checksums (by algorithm, e.g. CRC32) become Checksum<algorithm> elements. */
export function completeMultipartUploadXml(p: { location: string; bucket: string; key: string; etag: string; checksums?: Record<string, string> }): string {
  const checksums = Object.entries(p.checksums ?? {}).map(([algorithm, value]) => leaf(`Checksum${algorithm.replace(/[^A-Z0-9]/gi, '')}`, value));
  return document(
    'CompleteMultipartUploadResult',
    true,
    leaf('Location', p.location),
    leaf('Bucket', p.bucket),
    leaf('Key', p.key),
    leaf('ETag', quoteEtag(p.etag)),
    ...checksums,
  );
}

/** CopyObject. */
export function copyObjectResultXml(p: { etag: string; lastModified: Date }): string {
  return document('CopyObjectResult', true, leaf('LastModified', p.lastModified), leaf('ETag', quoteEtag(p.etag)));
}

/** UploadPartCopy. */
export function copyPartResultXml(p: { etag: string; lastModified: Date }): string {
  return document('CopyPartResult', true, leaf('LastModified', p.lastModified), leaf('ETag', quoteEtag(p.etag)));
}

/** DeleteObjects. In quiet mode only the errors are listed. */
export function deleteResultXml(p: {
  deleted: readonly { key: string; versionId?: string }[];
  errors: readonly { key: string; code: string; message: string; versionId?: string }[];
  quiet: boolean;
}): string {
  const deleted = p.quiet ? [] : p.deleted.map((d) => node('Deleted', leaf('Key', d.key), leaf('VersionId', d.versionId)));
  const errors = p.errors.map((e) => node('Error', leaf('Key', e.key), leaf('VersionId', e.versionId), leaf('Code', e.code), leaf('Message', e.message)));
  return document('DeleteResult', true, ...deleted, ...errors);
}

/** ListParts. The initiator defaults to the owner. */
export function listPartsXml(p: {
  bucket: string;
  key: string;
  uploadId: string;
  initiator?: S3Owner;
  owner: S3Owner;
  storageClass?: string;
  partNumberMarker: number;
  nextPartNumberMarker?: number;
  maxParts: number;
  isTruncated: boolean;
  parts: readonly { partNumber: number; lastModified: Date; etag: string; size: number }[];
}): string {
  return document(
    'ListPartsResult',
    true,
    leaf('Bucket', p.bucket),
    leaf('Key', p.key),
    leaf('UploadId', p.uploadId),
    owner('Initiator', p.initiator ?? p.owner),
    owner('Owner', p.owner),
    leaf('StorageClass', p.storageClass ?? 'STANDARD'),
    leaf('PartNumberMarker', p.partNumberMarker),
    leaf('NextPartNumberMarker', p.nextPartNumberMarker),
    leaf('MaxParts', p.maxParts),
    leaf('IsTruncated', p.isTruncated),
    ...p.parts.map((part) =>
      node('Part', leaf('PartNumber', part.partNumber), leaf('LastModified', part.lastModified), leaf('ETag', quoteEtag(part.etag)), leaf('Size', part.size)),
    ),
  );
}

/**
 * ListMultipartUploads. With encodingType 'url', keys, prefixes, the delimiter and key markers are URL-encoded.
 * Markers default to '', initiators to the owner.
 */
export function listMultipartUploadsXml(p: {
  bucket: string;
  keyMarker?: string;
  uploadIdMarker?: string;
  nextKeyMarker?: string;
  nextUploadIdMarker?: string;
  prefix: string;
  delimiter?: string;
  maxUploads: number;
  isTruncated: boolean;
  encodingType?: 'url';
  uploads: readonly { key: string; uploadId: string; initiator?: S3Owner; owner: S3Owner; storageClass?: string; initiated: Date }[];
  commonPrefixes?: readonly string[];
}): string {
  const name = nameEncoder(p.encodingType);
  return document(
    'ListMultipartUploadsResult',
    true,
    leaf('Bucket', p.bucket),
    leaf('KeyMarker', name(p.keyMarker ?? '')),
    leaf('UploadIdMarker', p.uploadIdMarker ?? ''),
    leaf('NextKeyMarker', name(p.nextKeyMarker)),
    leaf('NextUploadIdMarker', p.nextUploadIdMarker),
    leaf('Delimiter', name(p.delimiter)),
    leaf('Prefix', name(p.prefix)),
    leaf('MaxUploads', p.maxUploads),
    leaf('IsTruncated', p.isTruncated),
    leaf('EncodingType', p.encodingType),
    ...p.uploads.map((u) =>
      node(
        'Upload',
        leaf('Key', name(u.key)),
        leaf('UploadId', u.uploadId),
        owner('Initiator', u.initiator ?? u.owner),
        owner('Owner', u.owner),
        leaf('StorageClass', u.storageClass ?? 'STANDARD'),
        leaf('Initiated', u.initiated),
      ),
    ),
    ...(p.commonPrefixes ?? []).map((cp) => node('CommonPrefixes', leaf('Prefix', name(cp)))),
  );
}
