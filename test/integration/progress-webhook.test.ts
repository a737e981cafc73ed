import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BatchProgress, ProgressEvent } from '../../src';
import { questions, startTestContext, type TestContext } from '../helpers/context';

describe('progress snapshots for other consumers', () => {
  let ctx: TestContext;
  let receiver: http.Server;
  let url: string;
  const received: ProgressEvent[] = [];
  const heard: ProgressEvent[] = [];

  beforeAll(async () => {
    receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as ProgressEvent);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/maritaca`;
    ctx = await startTestContext({ latencyMs: 100 }, { onProgress: (event) => void heard.push(event) });
  });
  afterAll(async () => {
    await ctx?.close();
    await new Promise((resolve) => receiver.close(resolve));
  });

  test('posts throttled snapshots to the webhook and the worker listener, the last one final', async () => {
    const handle = await ctx.batches.start(questions(12), {
      maxConcurrency: 2,
      autoApproveBelow: 10,
      onProgress: { url, everySeconds: 2 },
    });
    const result = await handle.result();
    expect(result.status).toBe('completed');

    const mine = received.filter((e) => e.batchId === handle.batchId);
    expect(mine.length).toBeGreaterThanOrEqual(2);
    // Throttled: far fewer posts than the batch had changes (each request starts and ends).
    expect(mine.length).toBeLessThan(12);
    const last = mine.at(-1)!.progress as BatchProgress;
    expect(last).toMatchObject({ status: 'completed', completed: 12, total: 12, failed: 0 });
    const completedCounts = mine.map((e) => e.progress.completed);
    expect([...completedCounts].sort((a, b) => a - b)).toEqual(completedCounts);
    expect(heard.filter((e) => e.batchId === handle.batchId).map((e) => e.progress.completed)).toEqual(
      completedCounts,
    );
  });

  test('a webhook that is not an http(s) URL is refused before anything starts', async () => {
    await expect(
      ctx.batches.start(questions(1), { onProgress: { url: 'file:///etc/passwd' } }),
    ).rejects.toThrow(/options\.onProgress\.url: must be an http\(s\) URL/);
  });
});
