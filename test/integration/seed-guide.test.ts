/**
 * Every code example of the Python guide this project grew from (langchain-maritaca's
 * "Processamento em Lote"), ported line by line to the durable helpers, with what the guide promises.
 */
import { randomUUID } from 'node:crypto';
import {
  BatchRequestFailedError,
  FailureTypes,
  MaritacaRequestError,
  type ChatMessage,
  type ChatResult,
  type MaritacaBatchClient,
} from '../../src';
import { startTestContext, type TestContext } from '../helpers/context';

const human = (content: string): ChatMessage[] => [{ role: 'user', content }];
const contentOf = (r: ChatResult): string => r.generations[0]!.message.content;

describe('the batch guide, ported', () => {
  let ctx: TestContext;
  let model: MaritacaBatchClient;

  beforeAll(async () => {
    ctx = await startTestContext({ latencyMs: 50 });
    model = ctx.batches;
  });
  afterAll(async () => {
    await ctx?.close();
  });
  beforeEach(() => {
    ctx.fake.reset();
    ctx.fake.configure({ latencyMs: 50, errorRate500: null });
  });

  const capitals = [
    human('Qual é a capital do Brasil?'),
    human('Qual é a capital da Argentina?'),
    human('Qual é a capital do Chile?'),
    human('Qual é a capital do Peru?'),
    human('Qual é a capital da Colômbia?'),
  ];

  test('Processamento assíncrono em lote: five capitals with max_concurrency=3, in input order', async () => {
    const resultados = await model.abatchWithConcurrency(capitals, { maxConcurrency: 3 });
    expect(resultados).toHaveLength(5);
    resultados.forEach((resultado, i) => expect(contentOf(resultado)).toContain(capitals[i]![0]!.content));
    expect(ctx.fake.stats().peakConcurrency).toBeLessThanOrEqual(3);
  });

  test('Controle de concorrência: 2 is conservative, 10 aggressive', async () => {
    const inputs = Array.from({ length: 12 }, (_, i) => human(`Pergunta ${i}`));
    await model.abatchWithConcurrency(inputs, { maxConcurrency: 2 });
    expect(ctx.fake.stats().peakConcurrency).toBeLessThanOrEqual(2);
    ctx.fake.reset();
    await model.abatchWithConcurrency(inputs, { maxConcurrency: 10 });
    expect(ctx.fake.stats().peakConcurrency).toBeLessThanOrEqual(10);
    expect(ctx.fake.stats().peakConcurrency).toBeGreaterThan(2);
  });

  test('Tratamento de erros: return_exceptions=True puts the error in the failed slot', async () => {
    const inputs = [...capitals.slice(0, 2), human('Esta falha [[fake-status:400]]'), ...capitals.slice(2)];
    const resultados = await model.abatchWithConcurrency(inputs, {
      maxConcurrency: 5,
      returnExceptions: true,
    });
    const linhas = resultados.map((resultado, i) =>
      resultado instanceof Error
        ? `Requisição ${i} falhou: ${resultado.message}`
        : `Requisição ${i}: ${contentOf(resultado)}`,
    );
    expect(linhas[2]).toMatch(/^Requisição 2 falhou: /);
    const erro = resultados[2] as MaritacaRequestError;
    expect(erro).toBeInstanceOf(MaritacaRequestError);
    expect(erro.index).toBe(2);
    expect(erro.type).toBe(FailureTypes.BadRequest);
    expect(erro.status).toBe(400);
    for (const i of [0, 1, 3, 4, 5]) expect(resultados[i]).not.toBeInstanceOf(Error);
  });

  test('without return_exceptions the first failure rejects the whole call', async () => {
    const inputs = [human('ok'), human('Esta falha [[fake-status:422]]')];
    const error = await model.abatchWithConcurrency(inputs).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(BatchRequestFailedError);
    expect((error as BatchRequestFailedError).index).toBe(1);
    expect((error as BatchRequestFailedError).status).toBe(422);
  });

  test('Lote com acompanhamento de progresso: 20 questions, callback(completed, total, result)', async () => {
    const inputs = Array.from({ length: 20 }, (_, i) => human(`Pergunta ${i}`));
    const calls: { concluido: number; total: number; conteudo: string }[] = [];
    const noProgresso = (concluido: number, total: number, resultado: ChatResult) => {
      calls.push({ concluido, total, conteudo: contentOf(resultado) });
    };
    const resultados = await model.batchWithProgress(inputs, { maxConcurrency: 3, callback: noProgresso });

    expect(calls.map((c) => c.concluido)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(calls.every((c) => c.total === 20)).toBe(true);
    // Each result reaches the callback exactly once.
    const answered = calls.map((c) => Number(/Pergunta (\d+)/.exec(c.conteudo)![1])).sort((a, b) => a - b);
    expect(answered).toEqual(Array.from({ length: 20 }, (_, i) => i));
    const percent = calls.map(
      (c) => `Progresso: ${c.concluido}/${c.total} (${((100 * c.concluido) / c.total).toFixed(0)}%)`,
    );
    expect(percent.at(-1)).toBe('Progresso: 20/20 (100%)');
    resultados.forEach((r, i) => expect(contentOf(r)).toContain(`Pergunta ${i}`));
  });

  test('Callback de progresso detalhado: the result is the ChatResult of the request just finished', async () => {
    const linhas: string[] = [];
    const progressoDetalhado = (concluido: number, total: number, resultado: ChatResult) => {
      linhas.push(`[${concluido}/${total}] Recebido: ${contentOf(resultado).slice(0, 50)}...`);
    };
    await model.batchWithProgress(capitals, { maxConcurrency: 2, callback: progressoDetalhado });
    expect(linhas).toHaveLength(5);
    expect(linhas.some((l) => l.includes('Qual é a capital do Peru?'))).toBe(true);
  });

  const tres = [human('Pergunta curta'), human('Outra pergunta'), human('Terceira pergunta')];

  test('Estimativa de custo: three questions, max_output_tokens=500, without calling the model', async () => {
    const estimativa = await model.abatchEstimateCost(tres, { maxOutputTokens: 500 });
    expect(estimativa.totalRequests).toBe(3);
    expect(estimativa.totalInputTokens).toBeGreaterThan(3);
    expect(estimativa.totalOutputTokens).toBe(1500);
    expect(estimativa.totalCost).toBeCloseTo(estimativa.inputCost + estimativa.outputCost, 12);
    expect(estimativa.outputCost).toBeCloseTo((1500 * 20) / 1e6, 12);
    expect(estimativa.currency).toBe('BRL');
    expect(`Custo estimado: R$${estimativa.totalCost.toFixed(6)}`).toMatch(/^Custo estimado: R\$0\.03\d+$/);
    expect(ctx.fake.stats().totalRequests).toBe(0);
    expect((await model.abatchEstimateCost(tres)).totalOutputTokens).toBe(3000);
  });

  test('Combinar com estimativa de custo: over the budget it throws before running, under it it runs within the estimate', async () => {
    const loteComOrcamento = async (inputs: ChatMessage[][], custoMax = 1.0, batchId?: string) => {
      const estimativa = await model.abatchEstimateCost(inputs);
      if (estimativa.totalCost > custoMax) {
        throw new Error(`Custo do lote R$${estimativa.totalCost.toFixed(4)} excede orçamento R$${custoMax}`);
      }
      return model.abatchWithConcurrency(inputs, batchId ? { batchId } : {});
    };
    // The guard above is the guide's own code; what it relies on is the estimate. That must hold
    // the output's worst case (three answers of max_tokens 1000 at sabia-4's 20 BRL per million),
    // or a batch "within budget" could cost more than the budget.
    const estimativa = await model.abatchEstimateCost(tres);
    expect(estimativa.totalCost).toBeGreaterThanOrEqual((3 * 1000 * 20) / 1e6);
    await expect(loteComOrcamento(tres, 0.01)).rejects.toThrow(/excede orçamento R\$0.01/);
    expect(ctx.fake.stats().totalRequests).toBe(0);

    const batchId = `guia-orcamento-${randomUUID()}`;
    const resultados = await loteComOrcamento(tres, 1.0, batchId);
    expect(resultados).toHaveLength(3);
    // The batch ran under the very estimate the guard read, and spent no more than it.
    const progress = await model.getHandle(batchId).progress();
    expect(progress.estimate!.totalCost).toBe(estimativa.totalCost);
    const spent = resultados.reduce((sum, r) => {
      const { promptTokens, completionTokens } = r.llmOutput.tokenUsage;
      return sum + (promptTokens * 5 + completionTokens * 20) / 1e6;
    }, 0);
    expect(progress.actualCost).toBeCloseTo(spent, 12);
    expect(spent).toBeLessThanOrEqual(estimativa.totalCost);
  });

  test('Tratar falhas graciosamente: retry only the failures with max_concurrency=1', async () => {
    const inputs = Array.from({ length: 10 }, (_, i) => human(`Pergunta ${i}`));
    ctx.fake.configure({ errorRate500: 0.5, seed: 11 });
    const loteSeguro = async () => {
      const resultados = await model.abatchWithConcurrency(inputs, {
        returnExceptions: true,
        retry: { maximumAttempts: 1 },
      });
      const sucesso: ChatResult[] = [];
      const falhas: [number, ChatMessage[], Error][] = [];
      resultados.forEach((resultado, i) => {
        if (resultado instanceof Error) falhas.push([i, inputs[i]!, resultado]);
        else sucesso.push(resultado);
      });
      expect(falhas.length).toBeGreaterThan(0);
      ctx.fake.configure({ errorRate500: null });
      if (falhas.length) {
        const retryInputs = falhas.map((item) => item[1]);
        const retryResultados = await model.abatchWithConcurrency(retryInputs, { maxConcurrency: 1 });
        sucesso.push(...retryResultados);
      }
      return sucesso;
    };
    const sucesso = await loteSeguro();
    expect(sucesso).toHaveLength(10);
    const answered = sucesso
      .map((r) => Number(/Pergunta (\d+)/.exec(contentOf(r))![1]))
      .sort((a, b) => a - b);
    expect(answered).toEqual(Array.from({ length: 10 }, (_, i) => i));
  });
});
