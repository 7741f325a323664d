import { toBinary, type DescFile, type DescService } from '@bufbuild/protobuf';
import { FileDescriptorProtoSchema } from '@bufbuild/protobuf/wkt';
import type { Server } from '@grpc/grpc-js';
import type { PackageDefinition } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';

function collectFiles(file: DescFile, into: Map<string, DescFile>): void {
  if (into.has(file.name)) return;
  into.set(file.name, file);
  for (const dep of file.dependencies) collectFiles(dep, into);
}

/**
 * Builds the proto-loader style package definition @grpc/reflection reads: per
 * service, the binary FileDescriptorProto of its file and every transitive
 * dependency, straight from the protobuf-es descriptors (no .proto files at runtime).
 */
export function reflectionPackageDefinition(services: DescService[]): PackageDefinition {
  const files = new Map<string, DescFile>();
  for (const service of services) collectFiles(service.file, files);
  const fileDescriptorProtos = [...files.values()].map((file) => Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
  const definition: Record<string, unknown> = {};
  for (const service of services) {
    // @grpc/reflection only reads `fileDescriptorProtos` from each entry.
    definition[service.typeName] = { fileDescriptorProtos };
  }
  return definition as unknown as PackageDefinition;
}

/** Adds grpc.reflection.v1 and v1alpha (for grpcurl, Postman, grpcui) describing `services`. */
export function addReflection(server: Server, services: DescService[]): void {
  new ReflectionService(reflectionPackageDefinition(services), { services: services.map((s) => s.typeName) }).addToServer(server);
}
