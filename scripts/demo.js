#!/usr/bin/env node
// `npm run demo` entry: plain JavaScript so it runs before dependencies exist.
// On a fresh clone it installs them first (npm ci), then hands over to the
// TypeScript demo through tsx.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

if (!existsSync(join(root, 'node_modules', 'tsx')) || !existsSync(join(root, 'node_modules', '@switchyard', 'router'))) {
  console.log('Installing dependencies (first run)…');
  const install = spawnSync(npm, ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (install.status !== 0) process.exit(install.status ?? 1);
}

const demo = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'demo.ts'), ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(demo.status ?? 1);
