import { channelTarget } from './channel-target';

const ROUND_ROBIN = { 'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }) };

describe('channelTarget', () => {
  it('keeps one host:port as the target (a DNS name resolves to every replica) and balances it round-robin', () => {
    expect(channelTarget('127.0.0.1:50054')).toEqual({ target: '127.0.0.1:50054', channelOptions: ROUND_ROBIN });
    expect(channelTarget(' budget:50054 ')).toEqual({ target: 'budget:50054', channelOptions: ROUND_ROBIN });
    expect(channelTarget('dns:///budget.svc:50054').target).toBe('dns:///budget.svc:50054');
  });

  it('turns a comma-separated list of IPv4 replicas (localhost allowed) into one ipv4: target', () => {
    expect(channelTarget('10.0.0.1:50054, 10.0.0.2:50055,localhost:1')).toEqual({
      target: 'ipv4:10.0.0.1:50054,10.0.0.2:50055,127.0.0.1:1',
      channelOptions: ROUND_ROBIN,
    });
  });

  it('turns a list of [IPv6] replicas into one ipv6: target and takes a target with its scheme as written', () => {
    expect(channelTarget('[::1]:1,[fe80::2]:2').target).toBe('ipv6:[::1]:1,[fe80::2]:2');
    expect(channelTarget('ipv4:10.0.0.1:1,10.0.0.2:2').target).toBe('ipv4:10.0.0.1:1,10.0.0.2:2');
  });

  it('refuses what it cannot balance with an error naming the address and the entry', () => {
    expect(() => channelTarget('')).toThrow(/address: required/);
    expect(() => channelTarget('budget-1:50054,budget-2:50054')).toThrow(
      /address "budget-1:50054,budget-2:50054": list entry "budget-1:50054" is not an IP literal.*one DNS name/,
    );
    expect(() => channelTarget('10.0.0.1:50054,')).toThrow(/empty entry/);
    expect(() => channelTarget('10.0.0.1:50054,10.0.0.2')).toThrow(/entry "10.0.0.2" is not host:port/);
    expect(() => channelTarget('10.0.0.1:70000,10.0.0.2:1')).toThrow(/port 1-65535/);
    expect(() => channelTarget('10.0.0.1:1,[::1]:2')).toThrow(/all IPv4 or all IPv6/);
  });
});
