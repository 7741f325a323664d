import { EnvError, parseEnv } from './env';
import { commonServiceEnv, internalAuthEnv } from './service-env';

const spec = { ...commonServiceEnv(50052, 9465), ...internalAuthEnv({ operator: ['ClearUnavailable'], views: ['GetQuota'] }) };
const problems = (env: Record<string, string>) => {
  try {
    parseEnv(spec, env);
    return [];
  } catch (err) {
    return (err as EnvError).problems;
  }
};

describe('internalAuthEnv: an internal service is secure by default', () => {
  it('refuses the default bind (0.0.0.0) without SWITCHYARD_INTERNAL_TOKEN, saying how to set it or bind loopback', () => {
    const [problem, ...rest] = problems({});
    expect(rest).toEqual([]);
    expect(problem).toMatch(/^SWITCHYARD_INTERNAL_TOKEN: is required because GRPC_HOST 0\.0\.0\.0 is not a loopback address/);
    expect(problem).toContain('`openssl rand -hex 32`');
    expect(problem).toContain('set SWITCHYARD_INTERNAL_TOKEN to it here and on the router');
    expect(problem).toContain('or bind loopback only with GRPC_HOST=127.0.0.1');
  });

  it.each(['::', '10.0.0.7', 'switchyard-limiter'])('refuses GRPC_HOST=%s without a token', (host) => {
    expect(problems({ GRPC_HOST: host })).toEqual([expect.stringContaining(`GRPC_HOST ${host} is not a loopback address`)]);
  });

  it.each(['127.0.0.1', '::1', 'localhost'])('allows GRPC_HOST=%s without a token (tests, the embedded demo)', (host) => {
    expect(parseEnv(spec, { GRPC_HOST: host })).toMatchObject({ grpcHost: host, internalToken: undefined, operatorToken: undefined });
  });

  it('serves any address once the internal token is set; the operator token is optional', () => {
    expect(parseEnv(spec, { SWITCHYARD_INTERNAL_TOKEN: 'r' })).toMatchObject({ grpcHost: '0.0.0.0', internalToken: 'r', operatorToken: undefined });
    expect(parseEnv(spec, { SWITCHYARD_INTERNAL_TOKEN: 'r', SWITCHYARD_OPERATOR_TOKEN: 'o' })).toMatchObject({ internalToken: 'r', operatorToken: 'o' });
  });

  it('refuses an operator token equal to the internal token, or one without an internal token', () => {
    expect(problems({ SWITCHYARD_INTERNAL_TOKEN: 'same', SWITCHYARD_OPERATOR_TOKEN: 'same' })).toEqual([
      'SWITCHYARD_OPERATOR_TOKEN: must differ from SWITCHYARD_INTERNAL_TOKEN (the router holds that one; a leaked router credential must not be an operator credential)',
    ]);
    expect(problems({ GRPC_HOST: '127.0.0.1', SWITCHYARD_OPERATOR_TOKEN: 'o' })).toEqual([
      'SWITCHYARD_OPERATOR_TOKEN: is set but SWITCHYARD_INTERNAL_TOKEN is not; set both (the operator token only narrows what the internal token allows)',
    ]);
  });
});
