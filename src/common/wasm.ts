/**
 * The global `WebAssembly` namespace, typed for what Shoal uses (this project's TypeScript libs do not declare it):
 * aligned memory for O_DIRECT (osd/store's staging buffers and `bufferPool`'s) and instances of the erasure coder's module (src/erasure).
 */
export const webAssembly = (
  globalThis as unknown as {
    WebAssembly: {
      Memory: new (descriptor: { initial: number; maximum?: number }) => { buffer: ArrayBuffer; grow(pages: number): number };
      Module: new (bytes: Uint8Array) => object;
      Instance: new (module: object, imports?: object) => { exports: object };
      validate(bytes: Uint8Array): boolean;
    };
  }
).WebAssembly;
