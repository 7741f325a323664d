import { EnvError, describeEnv, envInt, envOptional, envString, parseEnv } from './env';

const spec = {
  port: envInt('GRPC_PORT', 50052, 'gRPC listen port', { max: 65535 }),
  redisUrl: envString('REDIS_URL', 'redis://127.0.0.1:6379', 'Redis for shared state'),
  token: envOptional('SWITCHYARD_INTERNAL_TOKEN', 'shared secret'),
  config: envString('SWITCHYARD_CONFIG', undefined, 'config file path'),
};

describe('parseEnv', () => {
  it('applies defaults and parses values', () => {
    expect(parseEnv(spec, { SWITCHYARD_CONFIG: '/c.yaml', GRPC_PORT: '0' })).toEqual({
      port: 0,
      redisUrl: 'redis://127.0.0.1:6379',
      token: undefined,
      config: '/c.yaml',
    });
  });

  it('lists every bad variable by name at once', () => {
    let error: EnvError | undefined;
    try {
      parseEnv(spec, { GRPC_PORT: '70000' });
    } catch (err) {
      error = err as EnvError;
    }
    expect(error?.problems).toEqual([
      'GRPC_PORT: must be between 0 and 65535, got 70000',
      'SWITCHYARD_CONFIG: is required (config file path)',
    ]);
  });

  it('rejects non-integers', () => {
    expect(() => parseEnv({ port: spec.port }, { GRPC_PORT: '50x' })).toThrow('GRPC_PORT: must be an integer, got "50x"');
  });

  it('renders README rows with defaults', () => {
    expect(describeEnv(spec)[3]).toBe('| `SWITCHYARD_CONFIG` | (required) | config file path |');
  });
});
