/**
 * Preloaded (`node --import`) into Portkey's gateway by the stack bench: its
 * Node server listens on every interface with no host option, and a benchmark
 * must not open a port to the network. A listen(port) without a host gets
 * 127.0.0.1.
 */
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && (args.length === 1 || typeof args[1] === 'function' || args[1] === undefined)) {
    args.splice(1, args[1] === undefined && args.length > 1 ? 1 : 0, '127.0.0.1');
  } else if (args[0] && typeof args[0] === 'object' && !args[0].host && !args[0].path) {
    args[0] = { ...args[0], host: '127.0.0.1' };
  }
  return listen.apply(this, args);
};
