/**
 * The budget holds as the provider bills, when calls are lost: a worker killed mid-call (its
 * calls keep generating on Maritaca's side) and hung calls the client gives up on are billed by
 * Maritaca but never answered. The fake server's own bill must stay within the approved budget.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { MaritacaBatchClient, type BatchHandle } from '../../src';
import { startFakeMaritaca, type FakeMaritacaServer } from '../../src/testing/fake-maritaca';
import { spawnCli, type Spawned } from '../helpers/processes';
import { waitFor } from '../helpers/wait';

const KEY = 'sk-billed-budget-secret';
const SIZE = 80;

const requests = Array.from({ length: SIZE }, (_, i) => ({
  id: `b${i}`,
  messages: [
    { role: 'system' as const, content: 'Classifique o sentimento da frase: positivo, negativo ou neutro.' },
    {
      role: 'user' as const,
      content: `Frase ${i}: o atendimento da loja ${i % 7} foi ${i % 2 ? 'ótimo' : 'lento'}.`,
    },
  ],
  maxTokens: 40,
}));

describe('a tight budget with a worker killed twice and 5% hung calls', () => {
  let fake: FakeMaritacaServer;
  const workers: Spawned[] = [];

  const startWorker = (address: string, taskQueue: string): Spawned => {
    const worker = spawnCli(['worker'], {
      TEMPORAL_ADDRESS: address,
      TEMPORAL_TASK_QUEUE: taskQueue,
      MARITACA_API_KEY: KEY,
      MARITACA_BASE_URL: fake.url,
    });
    workers.push(worker);
    return worker;
  };

  beforeAll(async () => {
    fake = await startFakeMaritaca({
      apiKey: KEY,
      latencyMs: 300,
      hangRate: 0.05,
      replyTokens: 'max',
      seed: 11,
    });
  });
  afterAll(async () => {
    for (const w of workers) await w.stop();
    await fake.close();
  });

  test("the fake's billed total stays within the approved budget", async () => {
    const address = process.env.TEST_TEMPORAL_ADDRESS!;
    const taskQueue = `billed-budget-${randomUUID()}`;
    const connection = await Connection.connect({ address });
    const batches = new MaritacaBatchClient({ client: new Client({ connection }), taskQueue });
    try {
      let worker = startWorker(address, taskQueue);
      await worker.waitForLine(/Worker polling/);
      const handle: BatchHandle = await batches.start(requests, {
        model: 'sabiazinho-4',
        maxConcurrency: 6,
        requestTimeout: '2s',
        retry: { initialInterval: '200ms' },
        // One call per activity: an inline batch cannot tell which calls of a lost run were
        // answered, so it counts them all at their worst case, and this budget is too tight for
        // the second kill to come (a stored batch reads them back: multi-host.test.ts).
        callsPerActivity: 1,
      });
      const waiting = await waitFor(
        () => handle.progress(),
        (p) => p.status === 'awaiting_approval',
      );
      const budget = Math.round(waiting.estimate!.totalCost * 0.6 * 1e6) / 1e6;
      await handle.approveBudget(budget, 'ana');
      const sent = () => Object.keys(fake.stats().byRequestId).filter((k) => k.startsWith(handle.batchId));
      for (const point of [12, 30]) {
        await waitFor(
          async () => sent().length,
          (n) => n >= point,
          { timeoutMs: 120_000, what: `request ${point} to be sent` },
        );
        worker.child.kill('SIGKILL');
        await worker.exited;
        worker = startWorker(address, taskQueue);
        await worker.waitForLine(/Worker polling/);
      }
      const stopped = await waitFor(
        () => handle.progress(),
        (p) => p.status === 'awaiting_budget' || p.status === 'completed',
        { timeoutMs: 240_000, what: 'the batch to run out of budget' },
      );
      // Calls abandoned by the killed worker keep generating; the bill is final once they end.
      await waitFor(
        async () => fake.stats().currentConcurrency,
        (n) => n === 0,
        { timeoutMs: 30_000, what: 'abandoned calls to finish generating' },
      );
      const bill = fake.stats().billed;
      const spent = stopped.budget!.spent;
      console.log(
        `billed-budget: budget R$ ${budget}, Maritaca billed R$ ${bill.costBRL} for ${bill.calls} calls, ` +
          `the batch counted R$ ${spent} (of which R$ ${stopped.budget!.unconfirmed ?? 0} unconfirmed), ` +
          `${stopped.succeeded} answered, status ${stopped.status}`,
      );
      expect(bill.costBRL).toBeLessThanOrEqual(budget);
      // The ledger never counts less than the provider bills.
      expect(spent + 1e-9).toBeGreaterThanOrEqual(bill.costBRL);
      expect(stopped.budget!.unconfirmed ?? 0).toBeGreaterThan(0);
      await handle.reject('enough');
    } finally {
      await connection.close();
    }
  }, 600_000);
});
