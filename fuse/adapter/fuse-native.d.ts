/** The part of fuse-native 2.2.6 (which ships no types) that the adapter uses. */
declare module 'fuse-native' {
  type Callback = (errno: number, ...results: unknown[]) => void;
  interface FuseOptions {
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    fsname?: string;
    timeout?: number | false | { default: number; [op: string]: number | false };
    allowOther?: boolean;
    defaultPermissions?: boolean;
  }
  class Fuse {
    constructor(mountPoint: string, ops: Record<string, (...args: never[]) => void>, options?: FuseOptions);
    mount(cb: (error: Error | null) => void): void;
    unmount(cb: (error: Error | null) => void): void;
    /** Patched: keeps a directory's attributes in the FUSE thread for `ttlMs` (fuse-native.patch). */
    cacheDirectory(path: string, stat: object, ttlMs: number): void;
    /** Patched: forgets `path` (and with `descendants` everything under it). */
    forgetDirectory(path: string, descendants: boolean): void;
    static unmount(mountPoint: string, cb: (error: Error | null) => void): void;
    static [errno: string]: unknown;
  }
  export = Fuse;
}
