import { setMaxListeners } from 'node:events';
import path from 'node:path';
import { Connection, Client } from '@temporalio/client';
import { MaritacaBatchClient } from '../client';
import { DEFAULT_TASK_QUEUE, type BatchRequest } from '../shared';
import { packageRoot } from '../testing/temporal-cli';
import { describeRetryableFailure } from '../worker/logging';
import { startDevStack, untilStopRequested, type DevStack } from './dev';

/** Thirty short questions in Portuguese: the demo batch. */
export const DEMO_QUESTIONS: readonly string[] = [
  'Qual é a capital do Brasil?',
  'Qual é a capital da Argentina?',
  'Qual é a capital do Chile?',
  'Qual é a capital do Peru?',
  'Qual é a capital da Colômbia?',
  'Quem escreveu "Dom Casmurro"?',
  'Em que ano foi proclamada a República no Brasil?',
  'Qual é o maior rio do Brasil em volume de água?',
  'Explique em uma frase o que é fotossíntese.',
  'Quantos estados tem o Brasil?',
  'Qual é a moeda oficial de Portugal?',
  'Resuma a história do Cristo Redentor em duas frases.',
  'O que é um número primo? Dê três exemplos.',
  'Traduza "bom dia" para o inglês e o espanhol.',
  'Qual é o ponto mais alto do Brasil?',
  'Cite três biomas brasileiros.',
  'Quem foi Santos Dumont?',
  'O que significa a sigla PIX?',
  'Qual é a diferença entre clima e tempo?',
  'Quantos minutos há em um dia?',
  'Qual é o prato típico mais famoso de Minas Gerais?',
  'Em que continente fica Moçambique?',
  'Explique o que é inflação para uma criança de dez anos.',
  'Qual é a fórmula da água?',
  'Quem pintou "Abaporu"?',
  'Qual é a língua oficial de Angola?',
  'O que é a Lei Geral de Proteção de Dados (LGPD)?',
  'Quantos lados tem um hexágono?',
  'Qual é o maior estado brasileiro em área?',
  'Dê uma dica para economizar energia em casa.',
];

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Leave the dev server and worker up after the batch ends, until Ctrl-C (default true). */
  keepRunning?: boolean;
  /** Where output lines go (default console.log). */
  log?: (line: string) => void;
  /** Temporal gRPC and UI ports (defaults 7233 and 8233). */
  port?: number;
  uiPort?: number;
  /** SQLite file that keeps the dev server's history (default `.temporal/demo.db` in the package). */
  dbFilename?: string;
  /** Stops the demo when aborted (default: the first SIGINT/SIGTERM; a second one exits at once). */
  signal?: AbortSignal;
}

function percent(rate: number): string {
  return `${Math.round(rate * 100)}%`;
}

/**
 * Runs the demo: a dev server (UI on :8233), the fake Maritaca server unless `MARITACA_API_KEY`
 * is set, a worker, and a 30-question batch that is estimated, approved by signal and followed
 * to the end. The first Ctrl-C stops everything it started, at any point.
 */
export async function runDemo(options: DemoOptions = {}): Promise<void> {
  const log = options.log ?? ((line: string) => console.log(line));
  const uiPort = options.uiPort ?? 8233;
  let stack: DevStack | undefined;
  let stopRequested = false;
  // Lines of a batch cut short by Ctrl-C would land after "Stopping" and read as if it went on.
  const batchLog = (line: string) => {
    if (!stopRequested) log(line);
  };
  const stop = untilStopRequested(
    options.signal,
    () => {
      stopRequested = true;
      log(`Stopping: ${stack ? stack.stopDescription : 'everything, once it has started'} ...`);
    },
    () => log('Exiting at once.'),
  );
  // Cancels the client's calls in flight (such as the long poll for the result) on Ctrl-C, which
  // would otherwise retry against the stopped server and keep the process up.
  const calls = new AbortController();
  // The client adds one listener per call and never removes it: a few dozen in a demo, no leak to warn of.
  setMaxListeners(0, calls.signal);
  let connection: Connection | undefined;
  try {
    const started = await startDevStack({
      log,
      port: options.port ?? 7233,
      uiPort,
      taskQueue: DEFAULT_TASK_QUEUE,
      dbFilename: options.dbFilename ?? path.join(packageRoot(), '.temporal', 'demo.db'),
      onRetryableFailure: (failure) => batchLog(`  ${describeRetryableFailure(failure)}`),
    });
    stack = started;
    if (stopRequested) return;
    const client = await Connection.connect({ address: started.address });
    connection = client;
    const running = client.withAbortSignal(calls.signal, () => runDemoBatch(started, client, batchLog));
    await Promise.race([running, stop.requested]);
    if (!stopRequested && (options.keepRunning ?? true)) {
      log('Press Ctrl-C to stop the dev server, the worker and the fake server.');
      await stop.requested;
    }
  } finally {
    calls.abort();
    await connection?.close().catch(() => undefined);
    await stack?.stop();
    if (stopRequested) log('Stopped.');
    // Only now: a second Ctrl-C while stopping must still exit at once, taking the dev server along.
    stop.dispose();
  }
}

/** Starts the demo batch, approves its estimate and follows it to the end. */
async function runDemoBatch(
  stack: DevStack,
  connection: Connection,
  log: (line: string) => void,
): Promise<void> {
  const batches = new MaritacaBatchClient({
    client: new Client({ connection }),
    taskQueue: stack.taskQueue,
  });
  const faults = stack.injectedFaults;
  if (faults) {
    log(
      `The fake server answers about ${percent(faults.errorRate500)} of calls with HTTP 500 and ` +
        `${percent(faults.errorRate429)} with 429 (Retry-After: ${faults.retryAfterSeconds} s) on purpose, ` +
        'to show the batch retrying and holding back; each one shows below as one line.',
    );
  }
  const requests: BatchRequest[] = DEMO_QUESTIONS.map((content, i) => ({
    id: `pergunta-${String(i + 1).padStart(2, '0')}`,
    messages: [{ role: 'user', content }],
    maxTokens: 300,
  }));
  const handle = await batches.start(requests, { model: 'sabiazinho-4', maxConcurrency: 3 });
  const uiUrl = `${stack.uiUrl}/namespaces/default/workflows/${handle.batchId}`;
  log(`Batch ${handle.batchId} started; watch it at ${uiUrl}`);

  let estimate = await handle.estimate();
  while (estimate === null) {
    await new Promise((r) => setTimeout(r, 200));
    estimate = await handle.estimate();
  }
  log(
    `Estimate: ${estimate.totalRequests} requests, ~${estimate.totalInputTokens} input tokens, ` +
      `up to ${estimate.totalOutputTokens} output tokens, up to R$ ${estimate.totalCost.toFixed(4)} (${estimate.model})`,
  );
  await handle.approve({ approvedBy: 'demo' });
  log(
    `Approved a budget of R$ ${estimate.totalCost.toFixed(4)} by signal; running with maxConcurrency 3 ...`,
  );

  const done = handle.result();
  let finished = false;
  void done.finally(() => (finished = true)).catch(() => undefined);
  while (!finished) {
    const p = await handle.progress();
    log(
      `  ${p.status.padEnd(9)} ${String(p.completed).padStart(2)}/${p.total} done, ${p.inFlight} in flight, ` +
        `${p.failed} failed, spent R$ ${p.actualCost.toFixed(5)}`,
    );
    await Promise.race([done.catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
  }
  const result = await done;
  log(
    `Batch ${result.status}: spent R$ ${result.actualCost.toFixed(5)} of R$ ${estimate.totalCost.toFixed(4)} estimated`,
  );
  for (const outcome of result.results.slice(0, 5)) {
    const answer = outcome.ok ? outcome.result.generations[0]?.text : `failed: ${outcome.error.message}`;
    log(`  [${outcome.id}] ${answer?.slice(0, 100)}`);
  }
  log(`The batch stays visible in the Temporal UI: ${uiUrl}`);
}
