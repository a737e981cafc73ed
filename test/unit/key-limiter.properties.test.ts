import {
  InvalidKeyLimitsError,
  KeyLeaseBook,
  parseKeyLimits,
  type KeyDemand,
  type KeyGrant,
  type KeyLeaseBookConfig,
  type KeyLimits,
  type ReturnedTokens,
} from '../../src/shared/key-limiter';
import { RATE_WINDOW_MARGIN_MS, RATE_WINDOW_MS } from '../../src/shared';
import { keyLimitsFromEnv } from '../../src/worker/config';
import { mulberry32 } from '../../src/testing/seeded-random';

/**
 * The key limiter's book under random demand from 1 to 5 batches over simulated minutes, driven
 * the way the limiter workflow drives it (allocate and expire on each wake, collect every answered
 * demand, batches asking again after a round trip, continue-as-new now and then). Each property
 * runs on the real book and again on a deliberately broken one that it must catch.
 */

const WINDOW = RATE_WINDOW_MS + RATE_WINDOW_MARGIN_MS;
const MAX_WAIT_MS = 10_000;

/** One simulated batch: how it asks and how its calls use what they reserved. */
interface SimBatch {
  id: string;
  priority: number;
  /** Requests per demand, from..to. */
  demandSize: [number, number];
  /** Reserved tokens per request. */
  unitInput: number;
  unitOutput: number;
  /** Round trip before it asks again after an answer. */
  latencyMs: [number, number];
  /** Waits the `retryAfterMs` of a zero grant before asking again. */
  honoursRetryAfter: boolean;
  /** Limits its worker is configured with (some workers are stale and report more). */
  limits: KeyLimits;
  activeFrom: number;
  activeUntil: number;
}

interface Scenario {
  limits: KeyLimits;
  batches: SimBatch[];
  durationMs: number;
  /** Calls last this long (ms, from..to) before their unused tokens can be returned. */
  callMs: [number, number];
  /** Chance per wake that the limiter continues as new. */
  rolloverChance: number;
}

/** A broken limiter: the book's durations, or a wrapper changing what reaches the book. */
interface Variant {
  config?: KeyLeaseBookConfig;
  /** Serves whole demands in arrival order instead of round-robin. */
  fifo?: boolean;
  /** Takes returned tokens off the batch's latest entries, whichever grant they came from. */
  returnsOffLatest?: boolean;
}

interface GrantRecord {
  batchId: string;
  demand: KeyDemand;
  grant: KeyGrant;
  askedAt: number;
  answeredAt: number;
}

/** One request as Maritaca would count it: at its grant, with what it really used. */
interface UseRecord {
  at: number;
  inputTokens: number;
  outputTokens: number;
}

interface SimResult {
  grants: GrantRecord[];
  uses: UseRecord[];
}

const between = (random: () => number, [from, to]: [number, number]) =>
  from + Math.floor(random() * (to - from + 1));

/** Runs `scenario` against the book (or `variant`), with `seed` deciding usage and latencies. */
function simulate(scenario: Scenario, seed: number, variant: Variant = {}): SimResult {
  const random = mulberry32(seed);
  const config: KeyLeaseBookConfig = { maxWaitMs: MAX_WAIT_MS, ...variant.config };
  let book = new KeyLeaseBook(config, undefined, 0);
  book.noteLimits(scenario.limits, 0);
  const grants: GrantRecord[] = [];
  const uses: UseRecord[] = [];
  /** When each batch asks next (undefined: waiting for an answer). */
  const nextAsk = new Map<string, number | undefined>();
  const outstanding = new Map<number, { batch: SimBatch; demand: KeyDemand; askedAt: number }>();
  /** FIFO variant: demands not yet shown to the book. */
  const fifoQueue: { batch: SimBatch; demand: KeyDemand; askedAt: number }[] = [];
  /** Unused tokens per batch, available to return once its calls end. */
  const pendingReturns = new Map<string, (ReturnedTokens & { endsAt: number })[]>();
  for (const batch of scenario.batches) nextAsk.set(batch.id, batch.activeFrom);

  const submit = (entry: { batch: SimBatch; demand: KeyDemand; askedAt: number }, now: number) => {
    const id = book.demand({ ...entry.demand, limits: entry.batch.limits }, now);
    outstanding.set(id, entry);
  };

  const collectSettled = (now: number) => {
    for (const [id, entry] of [...outstanding]) {
      if (!book.isSettled(id)) continue;
      outstanding.delete(id);
      const grant = book.collect(id, now);
      grants.push({
        batchId: entry.batch.id,
        demand: entry.demand,
        grant,
        askedAt: entry.askedAt,
        answeredAt: now,
      });
      if (grant.requests > 0) {
        const endsAt = now + between(random, scenario.callMs);
        let usedInput = 0;
        let usedOutput = 0;
        const perInput = grant.inputTokens / grant.requests;
        const perOutput = grant.outputTokens / grant.requests;
        for (let i = 0; i < grant.requests; i++) {
          // Prompts cost about what was estimated; answers often stop well before max_tokens.
          const input = Math.floor(perInput * (0.8 + 0.2 * random()));
          const output = Math.floor(perOutput * random() * random());
          usedInput += input;
          usedOutput += output;
          uses.push({ at: now, inputTokens: input, outputTokens: output });
        }
        const returns = pendingReturns.get(entry.batch.id) ?? [];
        returns.push({
          grantedAt: grant.grantedAt,
          inputTokens: grant.inputTokens - usedInput,
          outputTokens: grant.outputTokens - usedOutput,
          endsAt,
        });
        pendingReturns.set(entry.batch.id, returns);
      }
      const wait = grant.requests === 0 && entry.batch.honoursRetryAfter ? (grant.retryAfterMs ?? 0) : 0;
      nextAsk.set(entry.batch.id, now + wait + between(random, entry.batch.latencyMs));
      if (variant.fifo && fifoQueue.length > 0 && outstanding.size === 0) submit(fifoQueue.shift()!, now);
    }
  };

  const ask = (batch: SimBatch, now: number) => {
    const requests = between(random, batch.demandSize);
    const ready = (pendingReturns.get(batch.id) ?? []).filter((r) => r.endsAt <= now);
    pendingReturns.set(
      batch.id,
      (pendingReturns.get(batch.id) ?? []).filter((r) => r.endsAt > now),
    );
    const returned = ready.map(({ grantedAt, inputTokens, outputTokens }) => ({
      grantedAt: variant.returnsOffLatest ? Number.MAX_SAFE_INTEGER : grantedAt,
      inputTokens,
      outputTokens,
    }));
    const demand: KeyDemand = {
      batchId: batch.id,
      requests,
      inputTokens: requests * batch.unitInput,
      outputTokens: requests * batch.unitOutput,
      priority: batch.priority,
      ...(returned.length > 0 ? { returned } : {}),
    };
    nextAsk.set(batch.id, undefined);
    const entry = { batch, demand, askedAt: now };
    if (variant.fifo && outstanding.size > 0) fifoQueue.push(entry);
    else submit(entry, now);
  };

  let now = 0;
  for (let steps = 0; steps < 200_000; steps++) {
    book.allocate(now);
    book.expire(now);
    collectSettled(now);
    if (random() < scenario.rolloverChance) {
      // Continue-as-new: every wait ends, the state crosses as JSON into a new book.
      book.settleAll(now);
      collectSettled(now);
      book = new KeyLeaseBook(config, JSON.parse(JSON.stringify(book.getState())), now);
      book.noteLimits(scenario.limits, now);
    }
    // Batches answered at once may ask again at once (no round trip): serve them all at `now`.
    for (let due = true; due;) {
      due = false;
      for (const batch of scenario.batches) {
        const at = nextAsk.get(batch.id);
        if (at === undefined || at > now) continue;
        if (now >= batch.activeUntil) {
          nextAsk.set(batch.id, undefined);
          continue;
        }
        due = true;
        ask(batch, now);
        collectSettled(now);
      }
    }
    const candidates = [book.nextWakeAt(now), ...nextAsk.values()].filter(
      (t): t is number => t !== undefined && t > now,
    );
    if (candidates.length === 0 || now >= scenario.durationMs) break;
    now = Math.min(...candidates);
  }
  return { grants, uses };
}

/** Problems with what was granted: any sliding window over a limit, any grant beyond its demand. */
function limitViolations(scenario: Scenario, result: SimResult): string[] {
  const problems: string[] = [];
  const { rpm, inputTpm, outputTpm } = scenario.limits;
  const uses = result.uses;
  let start = 0;
  let input = 0;
  let output = 0;
  for (let end = 0; end < uses.length; end++) {
    input += uses[end]!.inputTokens;
    output += uses[end]!.outputTokens;
    while (uses[start]!.at <= uses[end]!.at - WINDOW) {
      input -= uses[start]!.inputTokens;
      output -= uses[start]!.outputTokens;
      start++;
    }
    const requests = end - start + 1;
    // A request larger than a limit on its own is allowed, alone in its window.
    if (requests === 1) continue;
    const at = `window ending ${uses[end]!.at} ms`;
    if (rpm !== undefined && requests > rpm) problems.push(`${at}: ${requests} requests > rpm ${rpm}`);
    if (inputTpm !== undefined && input > inputTpm) problems.push(`${at}: ${input} input > ${inputTpm}`);
    if (outputTpm !== undefined && output > outputTpm)
      problems.push(`${at}: ${output} output > ${outputTpm}`);
    if (problems.length > 3) break;
  }
  return problems;
}

/** Problems with grants against their demands: more than asked, tokens not pro rata, late answers. */
function demandViolations(result: SimResult): string[] {
  const problems: string[] = [];
  for (const { demand, grant, askedAt, answeredAt, batchId } of result.grants) {
    const share = (total: number) => Math.ceil((total * grant.requests) / demand.requests);
    if (grant.requests > demand.requests) problems.push(`${batchId}: ${grant.requests} > ${demand.requests}`);
    if (grant.inputTokens !== share(demand.inputTokens) || grant.outputTokens !== share(demand.outputTokens))
      problems.push(`${batchId}: tokens ${grant.inputTokens}/${grant.outputTokens} not pro rata`);
    if (grant.inputTokens > demand.inputTokens || grant.outputTokens > demand.outputTokens)
      problems.push(`${batchId}: more tokens than demanded`);
    if (answeredAt - askedAt > MAX_WAIT_MS)
      problems.push(`${batchId}: answered after ${answeredAt - askedAt} ms`);
    if (problems.length > 3) break;
  }
  return problems;
}

/** Requests granted per batch in `[from, to)`. */
function sharesIn(result: SimResult, from: number, to: number): Map<string, number> {
  const shares = new Map<string, number>();
  for (const { batchId, grant, answeredAt } of result.grants) {
    if (answeredAt < from || answeredAt >= to) continue;
    shares.set(batchId, (shares.get(batchId) ?? 0) + grant.requests);
  }
  return shares;
}

/** Random limits with at least one field set. */
function randomLimits(random: () => number): KeyLimits {
  for (;;) {
    const limits: KeyLimits = {
      ...(random() < 0.7 ? { rpm: 5 + Math.floor(random() * 300) } : {}),
      ...(random() < 0.5 ? { inputTpm: 2_000 + Math.floor(random() * 200_000) } : {}),
      ...(random() < 0.5 ? { outputTpm: 1_000 + Math.floor(random() * 50_000) } : {}),
    };
    if (Object.keys(limits).length > 0) return limits;
  }
}

/** Any mix of 1 to 5 batches coming and going, some workers reporting stale (higher) limits. */
function randomScenario(seed: number): Scenario {
  const random = mulberry32(seed);
  const limits = randomLimits(random);
  const count = 1 + Math.floor(random() * 5);
  const durationMs = 4 * 60_000;
  const stale: KeyLimits = Object.fromEntries(
    Object.entries(limits).map(([field, value]) => [field, Math.ceil(value * 1.5)]),
  );
  const batches = Array.from({ length: count }, (_, i): SimBatch => {
    const activeFrom = Math.floor(random() * 60_000);
    return {
      id: `b${i}`,
      priority: random() < 0.7 ? 1 : 2 + Math.floor(random() * 2),
      demandSize: [1, 1 + Math.floor(random() * 60)],
      // Now and then a request larger than a whole token limit.
      unitInput: Math.floor(random() < 0.05 ? 300_000 * random() : 50 + random() * 5_000),
      unitOutput: Math.floor(random() < 0.05 ? 60_000 * random() : 10 + random() * 4_000),
      latencyMs: [0, Math.floor(random() * 3_000)],
      honoursRetryAfter: random() < 0.5,
      limits: random() < 0.3 ? stale : limits,
      activeFrom,
      activeUntil: activeFrom + Math.floor(random() * durationMs),
    };
  });
  return { limits, batches, durationMs, callMs: [200, 90_000], rolloverChance: random() < 0.5 ? 0.02 : 0 };
}

/**
 * Batches of equal priority (unless `priorities` says otherwise) that all ask the whole time,
 * each for its own amount and each with its own request size, on a key whose limits bind.
 */
function busyScenario(seed: number, priorities?: number[]): Scenario {
  const random = mulberry32(seed);
  const count = priorities?.length ?? 2 + Math.floor(random() * 4);
  const perBatch = 20 + Math.floor(random() * 40);
  const units = Array.from({ length: count }, () => 100 + Math.floor(random() * 2_000));
  const weight = (priorities ?? []).reduce((a, b) => a + b, 0) || count;
  const tokensBind = random() < 0.5;
  const limits: KeyLimits = {
    rpm: perBatch * weight,
    ...(tokensBind ? { outputTpm: perBatch * units.reduce((a, b) => a + b, 0) } : {}),
  };
  const batches = units.map((unitOutput, i): SimBatch => ({
    id: `b${i}`,
    priority: priorities?.[i] ?? 1,
    // Some ask for a few at a time, some for many: fairness must not follow the demand's size.
    demandSize: random() < 0.5 ? [1, 3] : [20, 100],
    unitInput: 500,
    unitOutput,
    latencyMs: [0, 1_500],
    honoursRetryAfter: random() < 0.5,
    limits,
    activeFrom: 0,
    activeUntil: Number.POSITIVE_INFINITY,
  }));
  return { limits, batches, durationMs: 5 * 60_000, callMs: [200, 5_000], rolloverChance: 0.01 };
}

/** Per minute of a busy scenario (after the first), how far apart the shares per unit of priority are. */
function fairnessViolations(scenario: Scenario, result: SimResult): string[] {
  const problems: string[] = [];
  for (let from = 60_000; from + 60_000 <= scenario.durationMs; from += 60_000) {
    const shares = sharesIn(result, from, from + 60_000);
    const perPriority = scenario.batches.map((b) => (shares.get(b.id) ?? 0) / b.priority);
    const most = Math.max(...perPriority);
    const least = Math.min(...perPriority);
    if (most > 1.2 * least) {
      problems.push(
        `minute from ${from} ms: shares per priority ${perPriority.map((s) => s.toFixed(1)).join(', ')}`,
      );
    }
  }
  return problems;
}

/** Runs `check` over `runs` random seeds; returns the first failure. */
function firstFailure(
  runs: number,
  scenarioOf: (seed: number) => Scenario,
  check: (scenario: Scenario, result: SimResult) => string[],
  variant: Variant = {},
): string | undefined {
  for (let seed = 1; seed <= runs; seed++) {
    const scenario = scenarioOf(seed);
    const problems = check(scenario, simulate(scenario, seed * 7919, variant));
    if (problems.length > 0) return `seed ${seed}: ${problems.join('; ')}`;
  }
  return undefined;
}

describe('key limiter: limits', () => {
  test('in every sliding window the requests and tokens really used stay within the limits', () => {
    expect(firstFailure(300, randomScenario, limitViolations)).toBeUndefined();
  });

  test('no window (grants forgotten at once) is caught', () => {
    expect(
      firstFailure(300, randomScenario, limitViolations, { config: { windowMs: 1, marginMs: 0 } }),
    ).toMatch(/> (rpm|\d)/);
  });

  test('a window without the margin is caught', () => {
    expect(firstFailure(300, randomScenario, limitViolations, { config: { marginMs: 0 } })).toBeDefined();
  });

  test("returning unused tokens to the batch's latest entries, whichever grant they came from, is caught", () => {
    expect(firstFailure(300, randomScenario, limitViolations, { returnsOffLatest: true })).toMatch(
      /output|input/,
    );
  });
});

describe('key limiter: grants', () => {
  test('nothing beyond the demand, tokens pro rata per request, and every answer within the wait', () => {
    expect(
      firstFailure(300, randomScenario, (_scenario, result) => demandViolations(result)),
    ).toBeUndefined();
  });

  test('every batch gets capacity: a lone busy batch uses at least 90% of the rpm every minute', () => {
    const failure = firstFailure(
      50,
      (seed) => ({ ...busyScenario(seed, [1]), rolloverChance: 0 }),
      (scenario, result) => {
        const problems: string[] = [];
        for (let from = 0; from + 60_000 <= scenario.durationMs; from += 61_000) {
          const granted = sharesIn(result, from, from + 61_000).get('b0') ?? 0;
          if (granted < 0.9 * scenario.limits.rpm! && !scenario.limits.outputTpm)
            problems.push(`${granted} of ${scenario.limits.rpm} from ${from}`);
        }
        return problems;
      },
    );
    expect(failure).toBeUndefined();
  });
});

describe('key limiter: fairness', () => {
  test('equal-priority batches asking the whole time get shares within 20% of each other every minute', () => {
    expect(firstFailure(200, (seed) => busyScenario(seed), fairnessViolations)).toBeUndefined();
  });

  test('priority weighs the share: 2 against 1 gets twice as much, within 20%', () => {
    expect(firstFailure(100, (seed) => busyScenario(seed, [2, 1, 1]), fairnessViolations)).toBeUndefined();
  });

  test('first come, first served (whole demands in arrival order) is caught', () => {
    expect(firstFailure(200, (seed) => busyScenario(seed), fairnessViolations, { fifo: true })).toMatch(
      /shares per priority/,
    );
  });

  test('round-robin without held turns (a batch between two demands loses its turn) is caught', () => {
    expect(
      firstFailure(200, (seed) => busyScenario(seed), fairnessViolations, { config: { turnHoldMs: 0 } }),
    ).toMatch(/shares per priority/);
  });
});

describe('key limiter: examples', () => {
  test('batches waiting share one request at a time; the turn waits for room rather than being passed', () => {
    const book = new KeyLeaseBook({ maxWaitMs: 120_000 }, undefined, 0);
    const limits = { rpm: 10, outputTpm: 3_000 };
    const big = (at: number) =>
      book.demand({ batchId: 'a', requests: 10, inputTokens: 0, outputTokens: 10_000, limits }, at);
    const small = (at: number) =>
      book.demand({ batchId: 'b', requests: 10, inputTokens: 0, outputTokens: 100, limits }, at);
    // Alone, a gets what fits: three requests of 1,000 output tokens.
    expect(book.collect(big(0), 0)).toEqual({
      requests: 3,
      inputTokens: 0,
      outputTokens: 3_000,
      grantedAt: 0,
    });
    // a's next request does not fit, and b's small ones wait behind it instead of passing it.
    const a = big(100);
    const b = small(200);
    expect(book.isSettled(a) || book.isSettled(b)).toBe(false);
    expect(book.nextWakeAt(200)).toBe(61_000);
    // Once room frees they alternate, one request each, until a's next does not fit again
    // (2,020 used + 1,000 > 3,000): then b waits behind a again.
    book.allocate(61_000);
    expect(book.collect(a, 61_000)).toMatchObject({ requests: 2, outputTokens: 2_000 });
    expect(book.collect(b, 61_000)).toMatchObject({ requests: 2, outputTokens: 20 });
  });

  test('a zero grant after the wait says when to ask again, and the batch keeps its turn meanwhile', () => {
    const book = new KeyLeaseBook({ maxWaitMs: 10_000 }, undefined, 0);
    book.collect(
      book.demand({ batchId: 'a', requests: 2, inputTokens: 0, outputTokens: 0, limits: { rpm: 2 } }, 0),
      0,
    );
    const waiting = book.demand(
      { batchId: 'a', requests: 1, inputTokens: 0, outputTokens: 0, limits: {} },
      1_000,
    );
    expect(book.nextWakeAt(1_000)).toBe(11_000);
    book.allocate(11_000);
    book.expire(11_000);
    expect(book.collect(waiting, 11_000)).toEqual({
      requests: 0,
      inputTokens: 0,
      outputTokens: 0,
      grantedAt: 11_000,
      retryAfterMs: 50_000,
    });
    // b arrives while a stays away for its retryAfterMs: a's turn is held, then a is served first.
    const b = book.demand({ batchId: 'b', requests: 1, inputTokens: 0, outputTokens: 0, limits: {} }, 61_000);
    expect(book.isSettled(b)).toBe(false);
    const a = book.demand({ batchId: 'a', requests: 1, inputTokens: 0, outputTokens: 0, limits: {} }, 61_500);
    expect(book.collect(a, 61_500).requests).toBe(1);
    expect(book.collect(b, 61_500).requests).toBe(1);
  });

  test('returned tokens free room at once, taken off the grant they came from', () => {
    const book = new KeyLeaseBook({}, undefined, 0);
    const limits = { outputTpm: 1_000 };
    const first = book.collect(
      book.demand({ batchId: 'a', requests: 1, inputTokens: 0, outputTokens: 1_000, limits }, 0),
      0,
    );
    const blocked = book.demand({ batchId: 'a', requests: 1, inputTokens: 0, outputTokens: 500, limits }, 10);
    expect(book.isSettled(blocked)).toBe(false);
    book.collect(blocked, 10);
    const freed = book.demand(
      {
        batchId: 'a',
        requests: 1,
        inputTokens: 0,
        outputTokens: 500,
        returned: [{ grantedAt: first.grantedAt, inputTokens: 0, outputTokens: 800 }],
        limits,
      },
      20,
    );
    expect(book.collect(freed, 20).requests).toBe(1);
    expect(book.usage(20).outputTokens).toBe(700);
  });

  test('workers that disagree: the lowest recent limit wins, and an old one is forgotten after 5 minutes', () => {
    const book = new KeyLeaseBook({}, undefined, 0);
    book.noteLimits({ rpm: 1000, outputTpm: 200_000 }, 0);
    book.noteLimits({ rpm: 60 }, 1_000);
    expect(book.effectiveLimits(2_000)).toEqual({ rpm: 60, outputTpm: 200_000 });
    book.noteLimits({ rpm: 1000, outputTpm: 200_000 }, 400_000);
    expect(book.effectiveLimits(400_000)).toEqual({ rpm: 1000, outputTpm: 200_000 });
  });
});

describe('MARITACA_RATE_LIMIT', () => {
  test('parses the JSON of the three limits', () => {
    expect(
      parseKeyLimits('{"rpm":1000,"inputTpm":2000000,"outputTpm":200000}', 'MARITACA_RATE_LIMIT'),
    ).toEqual({
      rpm: 1000,
      inputTpm: 2_000_000,
      outputTpm: 200_000,
    });
    expect(keyLimitsFromEnv({ MARITACA_RATE_LIMIT: ' {"rpm":60} ' })).toEqual({ rpm: 60 });
    expect(keyLimitsFromEnv({ MARITACA_RATE_LIMIT: '  ' })).toBeUndefined();
    expect(keyLimitsFromEnv({})).toBeUndefined();
  });

  test.each([
    ['{"rpm":0}', 'MARITACA_RATE_LIMIT is not valid: rpm: must be a positive number'],
    ['{"rpm":1.5}', 'MARITACA_RATE_LIMIT is not valid: rpm: must be a whole number'],
    ['{"outputTpm":"200k"}', 'MARITACA_RATE_LIMIT is not valid: outputTpm: must be a number'],
    ['{"rpM":60}', '(input): Unrecognized key: "rpM"'],
    ['{}', 'MARITACA_RATE_LIMIT is not valid: (input): must set at least one of rpm, inputTpm, outputTpm'],
    ['1000', 'MARITACA_RATE_LIMIT is not valid: (input): must be a JSON object'],
    ['{rpm:1000}', 'MARITACA_RATE_LIMIT is not valid: (input): not valid JSON'],
  ])('refuses %s naming the variable and the field', (text, message) => {
    expect(() => keyLimitsFromEnv({ MARITACA_RATE_LIMIT: text })).toThrow(InvalidKeyLimitsError);
    expect(() => keyLimitsFromEnv({ MARITACA_RATE_LIMIT: text })).toThrow(message);
  });
});
