import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Root of this package: the folder holding its package.json (works from `src/` and `lib/`). */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      const name = (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name;
      if (name === 'temporal-maritaca-batch') return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('Could not find the temporal-maritaca-batch package root');
    dir = parent;
  }
}
