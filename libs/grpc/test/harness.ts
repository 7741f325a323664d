import { createGrpcServer, type GrpcLogger, type GrpcServerHandle, type GrpcServerOptions } from '../src';
import type { GenServiceMethods } from '@bufbuild/protobuf/codegenv2';

/** Logger that records error logs so tests can assert what was (not) leaked. */
export function createRecordingLogger() {
  const errors: { obj: object; msg?: string }[] = [];
  const warnings: { obj: object; msg?: string }[] = [];
  const logger: GrpcLogger = {
    info: () => {},
    warn: (obj, msg) => warnings.push({ obj, msg }),
    error: (obj, msg) => errors.push({ obj, msg }),
  };
  return { logger, errors, warnings };
}

/** Starts a real server on 127.0.0.1:0 and remembers it for `stopAll`. */
export function createServerPool() {
  const running: GrpcServerHandle[] = [];
  return {
    async start<const T extends GenServiceMethods[]>(options: Omit<GrpcServerOptions<T>, 'port' | 'host'>) {
      const handle = await createGrpcServer<T>({ host: '127.0.0.1', port: 0, ...options } as GrpcServerOptions<T>);
      running.push(handle);
      return { handle, address: `127.0.0.1:${handle.port}` };
    },
    async stopAll() {
      await Promise.all(running.splice(0).map((h) => h.shutdown(1000)));
    },
  };
}

/** A promise with its resolve exposed, for "the server observed X" assertions. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Fails the test instead of hanging when an expected event never comes. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}
