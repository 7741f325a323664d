#!/usr/bin/env node
// Adds lockfile entries for platform-specific optional packages (other OSes'
// and CPUs' builds of nx, swc, buf, unrs-resolver) that npm left out.
//
// Why: the registry mirror our machines and CI use serves the current version
// of these binaries only for some platforms, so `npm install` cannot record
// the rest, and `npm ci` then refuses the lockfile ("Missing: … from lock
// file") even though it would skip those packages on Linux anyway. The entries
// added here carry exactly what npm needs to skip them (version, os, cpu,
// optional); on a platform that does need one, npm fetches it by version.
// Run after any `npm install` that rewrites package-lock.json:
//   node scripts/complete-lockfile.js
'use strict';
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const path = join(__dirname, '..', 'package-lock.json');
const lock = JSON.parse(readFileSync(path, 'utf8'));
const packages = lock.packages;

const OS = ['darwin', 'linux', 'win32', 'android', 'freebsd', 'openharmony', 'netbsd', 'openbsd', 'sunos', 'aix'];
const CPU = { arm64: 'arm64', aarch64: 'arm64', x64: 'x64', ia32: 'ia32', arm: 'arm', armv7: 'arm', ppc64: 'ppc64', s390x: 's390x', loong64: 'loong64', riscv64: 'riscv64' };

/** os/cpu/libc from a platform package name such as `@nx/nx-linux-arm64-musl`. */
function platformOf(name) {
  const tokens = name.split('/').pop().split('-');
  const osIndex = tokens.findIndex((t) => OS.includes(t));
  if (osIndex < 0) return undefined;
  const cpu = CPU[tokens[osIndex + 1]];
  if (!cpu) return undefined;
  const rest = tokens.slice(osIndex + 2).join('-');
  const libc = /musl/.test(rest) ? 'musl' : /gnu/.test(rest) ? 'glibc' : undefined;
  return { os: [tokens[osIndex]], cpu: [cpu], ...(libc ? { libc: [libc] } : {}) };
}

/** Where node's resolution would find `dep` from the package at `location` (nearest node_modules upward). */
function resolveFrom(location, dep) {
  let dir = location;
  for (;;) {
    const candidate = `${dir ? `${dir}/` : ''}node_modules/${dep}`;
    if (packages[candidate]) return candidate;
    if (!dir) return undefined;
    const cut = dir.lastIndexOf('/node_modules/');
    dir = cut < 0 ? '' : dir.slice(0, cut);
  }
}

let added = 0;
for (const [location, entry] of Object.entries({ ...packages })) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const platform = platformOf(dep);
    if (!platform || !/^\d+\.\d+\.\d+$/.test(version)) continue;
    const found = resolveFrom(location, dep);
    if (found && packages[found].version === version) continue;
    // Hoist when nothing is there; nest under the dependent when another version holds the hoisted place.
    const at = found || !location ? `${location ? `${location}/` : ''}node_modules/${dep}` : `node_modules/${dep}`;
    if (packages[at]) continue;
    packages[at] = { version, ...(entry.dev ? { dev: true } : {}), optional: true, ...platform };
    added++;
  }
}

const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
writeFileSync(path, `${JSON.stringify(lock, null, 2)}\n`);
console.log(`complete-lockfile: added ${added} platform-only optional entries`);
