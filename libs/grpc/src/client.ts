import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type MessageInitShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import { Client as GrpcClient, Metadata, credentials as grpcCredentials, type ChannelCredentials, type ChannelOptions } from '@grpc/grpc-js';
import { channelTarget } from './channel-target';
import type { CallOptions, Client } from './types';

export interface ClientOptions {
  /** Default insecure (internal network). */
  credentials?: ChannelCredentials;
  /** Deadline applied to calls that set none; unset means no deadline. */
  defaultDeadlineMs?: number;
  /** Metadata sent with every call (per-call metadata wins on conflicts). */
  defaultMetadata?: Record<string, string>;
  channelOptions?: ChannelOptions;
}

function toMetadata(...sources: (Record<string, string> | undefined)[]): Metadata {
  const metadata = new Metadata();
  for (const source of sources) {
    if (!source) continue;
    for (const [key, value] of Object.entries(source)) metadata.set(key, value);
  }
  return metadata;
}

function resolveDeadline(options: CallOptions | undefined, defaultDeadlineMs: number | undefined): Date | undefined {
  if (options?.deadline) return options.deadline;
  const ms = options?.deadlineMs ?? defaultDeadlineMs;
  return ms === undefined ? undefined : new Date(Date.now() + ms);
}

/**
 * Typed promise client for a protobuf-es service over grpc-js: unary methods
 * return promises, server-streaming methods async iterables (breaking out of
 * the loop or aborting the signal cancels the call). Failures reject with the
 * grpc-js ServiceError; `parseGrpcError` turns it into code, message, details.
 * `address` may name several replicas, balanced round-robin (see channelTarget).
 */
export function createClient<S extends GenServiceMethods>(service: GenService<S>, address: string, options: ClientOptions = {}): Client<S> {
  const { target, channelOptions } = channelTarget(address);
  const grpcClient = new GrpcClient(target, options.credentials ?? grpcCredentials.createInsecure(), { ...channelOptions, ...options.channelOptions });
  const client: Record<string, unknown> = {
    close: () => grpcClient.close(),
    // grpc-js's waitForReady takes the channel out of IDLE (name resolution, TCP, HTTP/2) and reports READY or the deadline.
    connect: (deadlineMs: number) =>
      new Promise<void>((resolve, reject) => grpcClient.waitForReady(Date.now() + deadlineMs, (err) => (err ? reject(err) : resolve()))),
  };

  for (const method of service.methods as DescMethod[]) {
    const path = `/${service.typeName}/${method.name}`;
    const input: DescMessage = method.input;
    const output: DescMessage = method.output;
    const serialize = (value: MessageInitShape<DescMessage>) => Buffer.from(toBinary(input, create(input, value)));
    const deserialize = (bytes: Buffer) => fromBinary(output, bytes);
    const callOptions = (opts?: CallOptions) => {
      const deadline = resolveDeadline(opts, options.defaultDeadlineMs);
      return deadline ? { deadline } : {};
    };

    if (method.methodKind === 'unary') {
      client[method.localName] = (request: MessageInitShape<DescMessage>, opts?: CallOptions) =>
        new Promise((resolve, reject) => {
          if (opts?.signal?.aborted) return reject(opts.signal.reason);
          const call = grpcClient.makeUnaryRequest(
            path,
            serialize,
            deserialize,
            request,
            toMetadata(options.defaultMetadata, opts?.metadata),
            callOptions(opts),
            (err, response) => {
              opts?.signal?.removeEventListener('abort', onAbort);
              if (err) reject(err);
              else resolve(response);
            },
          );
          const onAbort = () => call.cancel();
          opts?.signal?.addEventListener('abort', onAbort, { once: true });
        });
    } else if (method.methodKind === 'server_streaming') {
      client[method.localName] = (request: MessageInitShape<DescMessage>, opts?: CallOptions) => ({
        async *[Symbol.asyncIterator]() {
          if (opts?.signal?.aborted) throw opts.signal.reason;
          const call = grpcClient.makeServerStreamRequest(
            path,
            serialize,
            deserialize,
            request,
            toMetadata(options.defaultMetadata, opts?.metadata),
            callOptions(opts),
          );
          const onAbort = () => call.cancel();
          opts?.signal?.addEventListener('abort', onAbort, { once: true });
          let finished = false;
          try {
            for await (const message of call) yield message;
            finished = true;
          } finally {
            opts?.signal?.removeEventListener('abort', onAbort);
            if (!finished) {
              // The consumer stopped early (break, throw): tell the server. The
              // CANCELLED status that follows has no reader, so swallow it.
              call.on('error', () => {});
              call.cancel();
            }
          }
        },
      });
    } else {
      client[method.localName] = () => {
        throw new Error(`${path}: ${method.methodKind} methods are not supported by this client`);
      };
    }
  }
  return client as Client<S>;
}
