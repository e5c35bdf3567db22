/**
 * The images of a pool: create, list, remove, open, clone, and the requests a process sends to the holder of an
 * image's lock (snapshot create/remove of an image in use) over watch/notify on the header object.
 */
import { StorageError, isErrorCode, isStorageError, silentLogger, type Logger } from '../common/index.js';
import type { ObjectClient } from '../client/index.js';
import { wire } from '../protocol/index.js';
import { Image, imageOpConcurrency, loadHeader, type HolderRequest, type ImageOpenOptions } from './image.js';
import {
  checkImageName,
  checkSnapName,
  dataObject,
  defaultObjectSize,
  directoryObject,
  encodeHeader,
  headerObject,
  imageSizeMax,
  objectSizeMax,
  objectSizeMin,
  type ImageHeader,
  type ParentRef,
} from './layout.js';
import { lockXattr, parseLock } from './lock.js';

const Kind = wire.ObjectOp.Kind;

export interface CreateImageOptions {
  objectSize?: number;
}

export interface OpenedImage {
  image: Image;
  /** Closes the image (releases its lock and stops serving requests). */
  close(): Promise<void>;
}

export class BlockImages {
  readonly #client: ObjectClient;
  readonly #logger: Logger;

  constructor(client: ObjectClient, logger: Logger = silentLogger) {
    this.#client = client;
    this.#logger = logger;
  }

  async create(pool: string, name: string, size: number, options: CreateImageOptions = {}): Promise<ImageHeader> {
    checkImageName(name);
    const objectSize = options.objectSize ?? defaultObjectSize;
    if (!Number.isSafeInteger(size) || size <= 0 || size > imageSizeMax) throw new StorageError('INVALID_ARGUMENT', `image size must be 1 byte to 1 PiB, not ${size}`);
    if (objectSize < objectSizeMin || objectSize > objectSizeMax || (objectSize & (objectSize - 1)) !== 0) {
      throw new StorageError('INVALID_ARGUMENT', `object size must be a power of two from ${objectSizeMin} to ${objectSizeMax} bytes`);
    }
    const header: ImageHeader = { name, size, objectSize, features: ['layering', 'exclusive-lock'], createdMs: Date.now(), snapSeq: 0, snapshots: [], children: [] };
    await this.#createHeader(pool, header);
    return header;
  }

  async #createHeader(pool: string, header: ImageHeader): Promise<void> {
    const data = encodeHeader(header);
    try {
      await this.#client.execute(pool, headerObject(header.name), [{ kind: Kind.KIND_CREATE, exclusive: true }, { kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: data.length }], data);
    } catch (error) {
      if (isStorageError(error, 'ALREADY_EXISTS')) throw new StorageError('ALREADY_EXISTS', `image ${pool}/${header.name} already exists`);
      throw error;
    }
    await this.#client.omapSet(pool, directoryObject, { [header.name]: Buffer.from(JSON.stringify({ createdMs: header.createdMs })) });
  }

  async list(pool: string): Promise<string[]> {
    const names: string[] = [];
    let after: string | undefined;
    for (;;) {
      let page;
      try {
        page = await this.#client.omapList(pool, directoryObject, after === undefined ? {} : { after });
      } catch (error) {
        if (isStorageError(error, 'NOT_FOUND')) return names;
        throw error;
      }
      names.push(...page.entries.map(([k]) => k));
      if (!page.more || page.entries.length === 0) return names;
      after = page.entries.at(-1)?.[0];
    }
  }

  async info(pool: string, name: string): Promise<{ header: ImageHeader; lockedBy?: { owner: string; expiresMs: number } }> {
    const { header } = await loadHeader(this.#client, pool, name);
    try {
      const value = await this.#client.getXattr(pool, headerObject(name), lockXattr);
      if (value.length > 0) return { header, lockedBy: parseLock(value) };
    } catch (error) {
      if (!isStorageError(error, 'NOT_FOUND')) throw error;
    }
    return { header };
  }

  /** Opens an image; writable opens take the lock and serve other processes' snapshot requests while open. */
  async open(pool: string, name: string, options: ImageOpenOptions = {}): Promise<OpenedImage> {
    const image = await Image.open(this.#client, pool, name, { logger: this.#logger, ...options }, (ref) => this.#openParent(ref));
    if (image.readOnly) return { image, close: () => image.close() };
    let watch: { stop(): Promise<void> } | undefined;
    try {
      watch = await this.#client.watch(pool, headerObject(name), async ({ payload }) => {
        try {
          await image.serveRequest(JSON.parse(payload.toString('utf8')) as HolderRequest);
          return Buffer.from(JSON.stringify({ ok: true }));
        } catch (error) {
          const e = StorageError.from(error);
          return Buffer.from(JSON.stringify({ ok: false, code: e.code, message: e.message }));
        }
      });
    } catch (error) {
      await image.close();
      throw error;
    }
    return {
      image,
      close: async () => {
        await watch?.stop();
        await image.close();
      },
    };
  }

  async #openParent(ref: ParentRef): Promise<Image> {
    const { header } = await loadHeader(this.#client, ref.pool, ref.image);
    const snap = header.snapshots.find((s) => s.id === ref.snapId);
    if (!snap) throw new StorageError('CORRUPT_DATA', `parent ${ref.pool}/${ref.image} lost snapshot ${ref.snapId}`);
    return Image.open(this.#client, ref.pool, ref.image, { snap: snap.name, logger: this.#logger }, (r) => this.#openParent(r));
  }

  /** Runs `fn` with the image open for writing (its lock held), then closes it. */
  async withImage<T>(pool: string, name: string, options: ImageOpenOptions, fn: (image: Image) => Promise<T>): Promise<T> {
    const opened = await this.open(pool, name, options);
    try {
      return await fn(opened.image);
    } finally {
      await opened.close();
    }
  }

  /**
   * Snapshot create/remove: done here when the image is free, or by the process holding its lock (an NBD gateway
   * serving it), which holds its writes while it takes the snapshot.
   */
  async snapshotRequest(pool: string, name: string, request: HolderRequest, options: ImageOpenOptions = {}): Promise<void> {
    checkSnapName(request.name);
    try {
      await this.withImage(pool, name, options, (image) => image.serveRequest(request));
      return;
    } catch (error) {
      if (!isStorageError(error, 'BUSY')) throw error;
      const { lockedBy } = await this.info(pool, name);
      if (!lockedBy || lockedBy.expiresMs < Date.now()) throw error;
    }
    const { acks, timeouts } = await this.#client.notify(pool, headerObject(name), Buffer.from(JSON.stringify(request)), 60_000);
    const answers = [...acks.values()].filter((v) => v.length > 0).map((v) => JSON.parse(v.toString('utf8')) as { ok: boolean; code?: string; message?: string });
    const answer = answers[0];
    if (!answer) throw new StorageError('UNAVAILABLE', `the holder of ${pool}/${name}'s lock did not answer${timeouts.length ? ` (${timeouts.length} watchers timed out)` : ''}`);
    if (!answer.ok) throw new StorageError(isErrorCode(answer.code) ? answer.code : 'INTERNAL', answer.message ?? 'request failed');
  }

  /** A new image `childPool/child` reading through to `pool/name@snap` until it writes or is flattened. */
  async clone(pool: string, name: string, snap: string, childPool: string, child: string): Promise<ImageHeader> {
    checkImageName(child);
    const { header: parent, version } = await loadHeader(this.#client, pool, name);
    const s = parent.snapshots.find((x) => x.name === snap);
    if (!s) throw new StorageError('NOT_FOUND', `image ${pool}/${name} has no snapshot ${JSON.stringify(snap)}`);
    const ref = `${childPool}/${child}@${s.id}`;
    const updated = { ...parent, children: [...parent.children, ref] };
    const data = encodeHeader(updated);
    await this.#client.ifVersion(pool, headerObject(name), version, [{ kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: data.length }], data);
    const header: ImageHeader = {
      name: child,
      size: s.size,
      objectSize: parent.objectSize,
      features: parent.features,
      createdMs: Date.now(),
      snapSeq: 0,
      snapshots: [],
      parent: { pool, image: name, snapId: s.id, overlap: s.size },
      children: [],
    };
    try {
      await this.#createHeader(childPool, header);
    } catch (error) {
      await this.#dropChild(pool, name, ref).catch(() => {});
      throw error;
    }
    return header;
  }

  /** Flattens a clone and lets its parent snapshot go (unless the clone's own snapshots still read from it). */
  async flatten(pool: string, name: string, options: ImageOpenOptions = {}): Promise<void> {
    const parent = await this.withImage(pool, name, options, async (image) => {
      const p = image.header.parent;
      await image.flatten();
      return image.header.snapshots.some((s) => s.parent) ? undefined : p;
    });
    if (parent) await this.#dropChild(parent.pool, parent.image, `${pool}/${name}@${parent.snapId}`);
  }

  async #dropChild(pool: string, name: string, ref: string): Promise<void> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const { header, version } = await loadHeader(this.#client, pool, name);
      if (!header.children.includes(ref)) return;
      const data = encodeHeader({ ...header, children: header.children.filter((c) => c !== ref) });
      try {
        await this.#client.ifVersion(pool, headerObject(name), version, [{ kind: Kind.KIND_WRITE_FULL, dataOffset: 0, dataLength: data.length }], data);
        return;
      } catch (error) {
        if (!isStorageError(error, 'PRECONDITION_FAILED')) throw error;
      }
    }
  }

  /** Removes an image with no snapshots that nobody holds open. */
  async remove(pool: string, name: string, options: ImageOpenOptions = {}): Promise<void> {
    const parent = await this.withImage(pool, name, options, async (image) => {
      const h = image.header;
      if (h.snapshots.length > 0) throw new StorageError('NOT_EMPTY', `image ${pool}/${name} has snapshots (${h.snapshots.map((s) => s.name).join(', ')}); remove them first`);
      const count = Math.ceil(h.size / h.objectSize);
      let next = 0;
      const worker = async () => {
        while (next < count) {
          await this.#client.remove(pool, dataObject(name, next++)).catch((error: unknown) => {
            if (!isStorageError(error, 'NOT_FOUND')) throw error;
          });
        }
      };
      await Promise.all(Array.from({ length: Math.min(imageOpConcurrency * 2, count) }, worker));
      return h.parent;
    });
    await this.#client.remove(pool, headerObject(name)).catch((error: unknown) => {
      if (!isStorageError(error, 'NOT_FOUND')) throw error;
    });
    await this.#client.omapRemove(pool, directoryObject, [name]).catch(() => {});
    if (parent) await this.#dropChild(parent.pool, parent.image, `${pool}/${name}@${parent.snapId}`);
  }
}

