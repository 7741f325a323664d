import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on every Linux we run on). */
const CLK_TCK = 100;

/** user + system CPU time of a live process, in ms (10 ms resolution), from /proc/<pid>/stat. */
export function processCpuMs(pid: number): number {
  // Fields after the parenthesised command: utime is 14th, stime 15th overall.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(rest[11]) + Number(rest[12])) * 1000) / CLK_TCK;
}

/** The pid of a server binary started by libs/testing, found by the port on its command line. */
export function pidOfServer(binary: string, port: number): number {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // redis-server rewrites its title to "redis-server 127.0.0.1:<port>"; nats-server keeps "-p <port>".
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split(/[\0 :]/);
      if (cmd[0]?.endsWith(binary) && cmd.includes(String(port))) return Number(entry);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no ${binary} process on port ${port}`);
}
