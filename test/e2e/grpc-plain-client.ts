import * as grpc from '@grpc/grpc-js';
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { DescMethod, DescService } from '@bufbuild/protobuf';

/**
 * A deliberately plain @grpc/grpc-js client (not libs/grpc): the end-to-end
 * test calls the router the way any internal service in any language would,
 * so it proves the wire contract rather than our own adapter talking to itself.
 */
export interface PlainCallResult<O> {
  response: O;
  metadata: grpc.Metadata;
}

export function createPlainClient(address: string) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());

  function methodOf(service: DescService, name: string): DescMethod {
    const method = service.methods.find((m) => m.name === name);
    if (!method) throw new Error(`${service.typeName} has no method ${name}`);
    return method;
  }

  function unary<S extends DescMessage, O extends DescMessage>(
    service: DescService,
    name: string,
    input: S,
    output: O,
    request: MessageInitShape<S>,
    metadata: Record<string, string> = {},
    deadlineMs = 20_000,
  ): Promise<PlainCallResult<MessageShape<O>>> {
    const method = methodOf(service, name);
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    return new Promise((resolve, reject) => {
      let headers = new grpc.Metadata();
      const call = client.makeUnaryRequest(
        `/${service.typeName}/${method.name}`,
        (m: MessageShape<S>) => Buffer.from(toBinary(input, m)),
        (b: Buffer) => fromBinary(output, b),
        create(input, request),
        md,
        { deadline: Date.now() + deadlineMs },
        (err, response) => (err ? reject(err) : resolve({ response: response!, metadata: headers })),
      );
      call.on('metadata', (m) => (headers = m));
    });
  }

  async function serverStream<S extends DescMessage, O extends DescMessage>(
    service: DescService,
    name: string,
    input: S,
    output: O,
    request: MessageInitShape<S>,
    metadata: Record<string, string> = {},
    deadlineMs = 20_000,
  ): Promise<MessageShape<O>[]> {
    const method = methodOf(service, name);
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(metadata)) md.set(k, v);
    const call = client.makeServerStreamRequest(
      `/${service.typeName}/${method.name}`,
      (m: MessageShape<S>) => Buffer.from(toBinary(input, m)),
      (b: Buffer) => fromBinary(output, b),
      create(input, request),
      md,
      { deadline: Date.now() + deadlineMs },
    );
    const messages: MessageShape<O>[] = [];
    for await (const message of call) messages.push(message as MessageShape<O>);
    return messages;
  }

  return { unary, serverStream, close: () => client.close() };
}
