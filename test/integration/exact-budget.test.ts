/**
 * Budgets as Maritaca bills them: prompts counted exactly, the chat template's overhead learned
 * from the answers, and the fake server's own bill (not the workflow's ledger) as the judge.
 */
import type { BatchHandle, BatchProgress, BatchRequest } from '../../src';
import { startTestContext, type TestContext } from '../helpers/context';
import { waitFor } from '../helpers/wait';

/** A long Portuguese lease contract, different for every request (numbers, names, dates). */
function contract(i: number): string {
  const clauses = Array.from(
    { length: 24 },
    (_, c) =>
      `Cláusula ${c + 1}ª — O LOCATÁRIO nº ${1000 + i} obriga-se a pagar, até o dia ${(c % 28) + 1} de cada mês, ` +
      `o aluguel de R$ ${(1500 + i * 37 + c * 11).toLocaleString('pt-BR')},00, reajustado pelo IGP-M, ` +
      `sob pena de multa de ${(c % 10) + 2}% e juros de mora; a rescisão antecipada sujeita-o à indenização ` +
      `prevista no art. ${4 + c} da Lei nº 8.245/1991, respeitada a proporcionalidade.`,
  );
  return clauses.join('\n');
}

/** The batch of the report: 60 extraction requests over a long contract, answers of at most 30 tokens. */
function extractionRequests(count: number): BatchRequest[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `contrato-${i}`,
    messages: [
      { role: 'system', content: 'Extraia do contrato o valor do aluguel e responda só com o número.' },
      { role: 'user', content: contract(i) },
    ],
    maxTokens: 30,
  }));
}

describe('exact counts: the budget as Maritaca bills it', () => {
  let ctx: TestContext;

  beforeAll(async () => {
    // Every answer uses all of its max_tokens: the edge of what the estimate assumed.
    ctx = await startTestContext({ latencyMs: 30, replyTokens: 'max' });
  });
  afterAll(async () => {
    await ctx?.close();
  });
  beforeEach(() => ctx.fake.reset());

  const progressOf = (handle: BatchHandle) => () => handle.progress();
  const billed = () => ctx.fake.stats().billed.costBRL;

  test('60 long prompts with short answers finish on the first approval of the estimate', async () => {
    const handle = await ctx.batches.start(extractionRequests(60), { model: 'sabia-4', maxConcurrency: 6 });
    const waiting = await waitFor(progressOf(handle), (p) => p.status === 'awaiting_approval');
    const estimate = waiting.estimate!;
    expect(estimate.inputTokenCount).toBe('exact');
    // Counted exactly, the worst case is the estimate itself (it was 3.6 times it with a byte bound).
    expect(estimate.maxCost).toBeCloseTo(estimate.totalCost, 9);
    await handle.approve();
    const result = await handle.result();
    expect(result.status).toBe('completed');
    expect(result.approvals).toHaveLength(1);
    expect(result.approvedBudget).toBe(estimate.totalCost);
    expect(result.counts).toEqual({ total: 60, succeeded: 60, failed: 0 });
    // The provider's bill, not the workflow's record, stays within the approval, and they agree.
    expect(billed()).toBeLessThanOrEqual(result.approvedBudget!);
    expect(result.actualCost).toBeCloseTo(billed(), 9);
    expect(result.unconfirmedCost ?? 0).toBe(0);
    // The fake's template (3 per request + 5 per message) was learned from the answers.
    expect(result.templateOverhead).toEqual({ 'sabia-4': { perRequest: 0, perMessage: 6.5 } });
  });

  test('a budget of 40% of the estimate stops in awaiting_budget with the bill within it', async () => {
    const handle = await ctx.batches.start(extractionRequests(30), { model: 'sabia-4', maxConcurrency: 4 });
    const waiting = await waitFor(progressOf(handle), (p) => p.status === 'awaiting_approval');
    const budget = Math.round(waiting.estimate!.totalCost * 0.4 * 1e6) / 1e6;
    await handle.approveBudget(budget, 'ana');
    const stopped: BatchProgress = await waitFor(progressOf(handle), (p) => p.status === 'awaiting_budget');
    expect(stopped.inFlight).toBe(0);
    expect(stopped.budget!.spent).toBeLessThanOrEqual(budget);
    expect(billed()).toBeLessThanOrEqual(budget);
    expect(billed()).toBeCloseTo(stopped.budget!.spent, 9);
    // Learned reservations are exact, so it stops only when the next request truly does not fit.
    expect(stopped.budget!.remaining).toBeLessThan(waiting.estimate!.totalCost / 30);
    expect(stopped.succeeded).toBeGreaterThanOrEqual(11);
    await handle.reject('enough');
    expect((await handle.result()).status).toBe('budget_exhausted');
  });
});
