import { describe, expect, it } from 'vitest';
import { runNodeScript } from './helpers.js';

describe('importing dpf', () => {
  it('loads neither BullMQ, ioredis, pg nor the AWS SDK: they load when a run uses a queue, PostgreSQL or S3', async () => {
    const { code, stdout, stderr } = await runNodeScript(`
      import { createRequire } from 'node:module';
      await import('dpf');
      const loaded = new Set();
      for (const file of Object.keys(createRequire(import.meta.url).cache)) {
        const match = /node_modules\\/((@[^/]+\\/)?[^/]+)/.exec(file);
        if (match) loaded.add(match[1]);
      }
      console.log(JSON.stringify([...loaded].sort()));
    `).done;
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const loaded = JSON.parse(stdout) as string[];
    expect(loaded.filter((name) => /^(bullmq|ioredis|pg|pg-copy-streams|@aws-sdk\/.*)$/.test(name))).toEqual([]);
  });
});
