import { z } from 'zod';
import { RATE_WINDOW_MARGIN_MS, RATE_WINDOW_MS, type RateLimits } from './rate-window';
import { describeIssues, validateWith, type InputIssue } from './schema';

/**
 * The key limiter's policy: which batch may start how many requests on one API key now, so that
 * every batch and worker sharing the key stays, together, within the key's per-minute limits.
 * Pure and deterministic (time is passed in, state is plain JSON), so the `maritacaKeyLimiter`
 * workflow runs it in the sandbox and the property tests run it over simulated minutes.
 */

/** Per-minute limits of one Maritaca API key; the same shape as a batch's `rateLimit`. */
export type KeyLimits = RateLimits;

/** Worker environment variable holding the key's limits as JSON, e.g. `{"rpm":1000,"inputTpm":2000000,"outputTpm":200000}`. */
export const RATE_LIMIT_ENV = 'MARITACA_RATE_LIMIT';

/** Workflow type of the key limiter (one workflow per API key, started by the lease activity). */
export const KEY_LIMITER_WORKFLOW_TYPE = 'maritacaKeyLimiter';

/** Prefix of the limiter's workflow id; the rest is a hash of the key, never the key. */
export const KEY_LIMITER_WORKFLOW_ID_PREFIX = 'maritaca-key-limiter-';

const limitField = z
  .number({ error: 'must be a number' })
  .int({ error: 'must be a whole number' })
  .positive({ error: 'must be a positive number' })
  .optional();

/** The key's limits: at least one of `rpm`, `inputTpm`, `outputTpm`, each a positive whole number. */
export const keyLimitsSchema = z
  .strictObject(
    { rpm: limitField, inputTpm: limitField, outputTpm: limitField },
    {
      // Only for a value that is no object at all: an unknown field keeps zod's own message naming it.
      error: (issue) =>
        issue.code === 'invalid_type'
          ? 'must be a JSON object such as {"rpm":1000,"inputTpm":2000000,"outputTpm":200000}'
          : undefined,
    },
  )
  .refine((limits) => Object.values(limits).some((value) => value !== undefined), {
    error: 'must set at least one of rpm, inputTpm, outputTpm',
  });

/** The key's limits could not be read; `issues` name each bad field. */
export class InvalidKeyLimitsError extends Error {
  override readonly name = 'InvalidKeyLimitsError';

  constructor(
    /** Where the limits came from, e.g. `MARITACA_RATE_LIMIT`. */
    readonly source: string,
    /** What is wrong, field by field. */
    readonly issues: readonly InputIssue[],
  ) {
    super(`${source} is not valid: ${describeIssues(issues)}`);
  }
}

/**
 * Parses the key's limits from JSON text (the value of `MARITACA_RATE_LIMIT`).
 *
 * @throws {InvalidKeyLimitsError} naming `source` and the field at fault.
 * @example
 * parseKeyLimits('{"rpm":1000,"outputTpm":200000}', 'MARITACA_RATE_LIMIT') // => { rpm: 1000, outputTpm: 200000 }
 * parseKeyLimits('{"rpm":0}', 'MARITACA_RATE_LIMIT') // throws "MARITACA_RATE_LIMIT is not valid: rpm: must be a positive number"
 */
export function parseKeyLimits(text: string, source: string): KeyLimits {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    const reason = (err as { message?: unknown } | null)?.message;
    throw new InvalidKeyLimitsError(source, [
      { path: '(input)', message: `not valid JSON (${String(reason)})` },
    ]);
  }
  return checkKeyLimits(json, source);
}

/**
 * Checks limits given as a value (a plugin option) as {@link parseKeyLimits} checks the env var's.
 *
 * @throws {InvalidKeyLimitsError} naming `source` and the field at fault.
 */
export function checkKeyLimits(value: unknown, source: string): KeyLimits {
  const parsed = validateWith(keyLimitsSchema, value);
  if (!parsed.ok) throw new InvalidKeyLimitsError(source, parsed.issues);
  return withoutUndefined(parsed.value);
}

/** Unused tokens of requests granted at `grantedAt`, handed back so the key's window counts what they used. */
export interface ReturnedTokens {
  /** The `grantedAt` of the grant the requests came from. */
  grantedAt: number;
  /** Input tokens reserved but not used (never negative). */
  inputTokens: number;
  /** Output tokens reserved (`max_tokens`) but not generated. */
  outputTokens: number;
}

/** What one batch asks the key for. */
export interface KeyDemand {
  /** The batch (its workflow id): fairness is between batches. */
  batchId: string;
  /** Requests it wants to start. */
  requests: number;
  /** Worst-case input tokens of those requests, in total. */
  inputTokens: number;
  /** Worst-case output tokens (their `max_tokens`) of those requests, in total. */
  outputTokens: number;
  /** Share weight among waiting batches (default 1): a batch of priority 2 gets two requests a round. */
  priority?: number;
  /** Tokens its earlier grants reserved and its calls did not use. */
  returned?: ReturnedTokens[];
}

/** The update argument: a demand plus the limits the asking worker is configured with. */
export interface KeyLeaseRequest extends KeyDemand {
  /** The key's limits as this worker knows them (see {@link KeyLeaseBook.effectiveLimits}). */
  limits: KeyLimits;
}

/** What a demand gets: whole requests, each with its share of the demand's tokens. */
export interface KeyGrant {
  /** Requests the batch may start now (0 when the wait ran out). */
  requests: number;
  /** Input tokens granted: `requests` shares of the demand's input tokens, rounded up. */
  inputTokens: number;
  /** Output tokens granted, likewise. */
  outputTokens: number;
  /** The limiter's time of the grant (ms since the epoch); name it when returning unused tokens. */
  grantedAt: number;
  /**
   * Only on a zero grant: how long until the key's window would have room for this demand's next
   * request were it alone (0 when it only waited for other batches' turns). The batch keeps its
   * turn for this long plus the hold, so asking again after it loses nothing.
   */
  retryAfterMs?: number;
}

/** Requests and tokens, granted or counted. */
export interface KeyUsage {
  requests: number;
  inputTokens: number;
  outputTokens: number;
}

/** Requests granted to one batch at one instant, counted against the key for a window plus margin. */
export interface KeyWindowEntry extends KeyUsage {
  batchId: string;
  /** Limiter time (ms) of the grant. */
  at: number;
}

/** A demand waiting in the limiter, with what it has been granted so far. */
export interface OpenDemand {
  id: number;
  batchId: string;
  requests: number;
  inputTokens: number;
  outputTokens: number;
  arrivedAt: number;
  /** When it stops waiting and gets a zero grant. */
  deadline: number;
  granted: KeyUsage;
  /** It got a zero grant (its wait ran out, or the limiter is continuing as new). */
  expired?: boolean;
  retryAfterMs?: number;
}

/** One batch's place in the rotation. */
export interface RotationSlot {
  batchId: string;
  priority: number;
  lastDemandAt: number;
  /**
   * Until when the batch keeps its turn while it has no demand waiting: it was just served and
   * is expected to ask again. Without it a batch whose next demand is a round trip away would
   * lose every turn to batches that happen to be waiting.
   */
  heldUntil?: number;
}

/** Limits a worker reported, and when last. */
export interface ReportedLimits {
  limits: KeyLimits;
  at: number;
}

/** Everything the book knows, as plain JSON: carried across continue-as-new. */
export interface KeyLeaseBookState {
  /** Grants still counted, oldest first. */
  window: KeyWindowEntry[];
  /** Demands not yet answered, in arrival order. */
  demands: OpenDemand[];
  /** Batches that asked recently, in turn order. */
  rotation: RotationSlot[];
  /** Index in `rotation` of the batch whose turn it is. */
  turn: number;
  /** Requests the batch whose turn it is got in this turn (up to its priority). */
  servedInTurn: number;
  reportedLimits: ReportedLimits[];
  nextDemandId: number;
  /** When the last demand arrived (or the book started). */
  lastDemandAt: number;
  /** When the last allocation stopped for want of room or for a held turn, when it can go on. */
  resumeAt?: number;
  /** Lifetime totals, for the limiter's details. */
  granted: KeyUsage & { leases: number };
}

/** Durations of the book's policy; every one has a default. */
export interface KeyLeaseBookConfig {
  /** Length of the key's window (default 60 s, Maritaca's minute). */
  windowMs?: number;
  /** Extra time a grant stays counted, for the delay before its call reaches Maritaca (default 1 s). */
  marginMs?: number;
  /** Longest a demand waits before it gets a zero grant (default 10 s). */
  maxWaitMs?: number;
  /** How long a batch just served keeps its turn for its next demand (default 2 s). */
  turnHoldMs?: number;
  /** How long limits a worker reported still count; the lowest counted wins (default 5 min). */
  limitsMemoryMs?: number;
}

/** Default longest wait of one lease. */
export const DEFAULT_KEY_LEASE_MAX_WAIT_MS = 10_000;
/** Default time a batch keeps its turn after a grant, waiting for its next demand. */
export const DEFAULT_KEY_TURN_HOLD_MS = 2_000;
/** Default time limits reported by a worker keep counting after it last reported them. */
export const DEFAULT_KEY_LIMITS_MEMORY_MS = 5 * 60_000;

const NO_USAGE: KeyUsage = { requests: 0, inputTokens: 0, outputTokens: 0 };

/** `limits` without absent fields, so two equal limits serialise alike. */
function withoutUndefined(limits: KeyLimits): KeyLimits {
  return {
    ...(limits.rpm !== undefined ? { rpm: limits.rpm } : {}),
    ...(limits.inputTpm !== undefined ? { inputTpm: limits.inputTpm } : {}),
    ...(limits.outputTpm !== undefined ? { outputTpm: limits.outputTpm } : {}),
  };
}

/**
 * The key's book of leases: its sliding window of granted capacity and the demands waiting for
 * it. One request at a time goes round-robin over the batches waiting (a batch of priority `p`
 * gets `p` a round), and the batch whose turn it is waits for room rather than letting smaller
 * requests pass it, so no batch starves. A grant counts from the moment it is made for the
 * window plus the margin; a request larger than a whole limit is granted once the window is
 * empty, or it could never run.
 *
 * @example
 * const book = new KeyLeaseBook({});
 * const id = book.demand({ batchId: 'b1', requests: 5, inputTokens: 500, outputTokens: 5000, limits: { rpm: 60 } }, now);
 * if (book.isSettled(id)) grant = book.collect(id, now); // else wait for allocate() at nextWakeAt()
 */
export class KeyLeaseBook {
  private readonly s: KeyLeaseBookState;
  private readonly windowMs: number;
  private readonly marginMs: number;
  private readonly maxWaitMs: number;
  private readonly turnHoldMs: number;
  private readonly limitsMemoryMs: number;

  constructor(config: KeyLeaseBookConfig, carried?: KeyLeaseBookState, now = 0) {
    this.windowMs = config.windowMs ?? RATE_WINDOW_MS;
    this.marginMs = config.marginMs ?? RATE_WINDOW_MARGIN_MS;
    this.maxWaitMs = config.maxWaitMs ?? DEFAULT_KEY_LEASE_MAX_WAIT_MS;
    this.turnHoldMs = config.turnHoldMs ?? DEFAULT_KEY_TURN_HOLD_MS;
    this.limitsMemoryMs = config.limitsMemoryMs ?? DEFAULT_KEY_LIMITS_MEMORY_MS;
    this.s = carried ?? {
      window: [],
      demands: [],
      rotation: [],
      turn: 0,
      servedInTurn: 0,
      reportedLimits: [],
      nextDemandId: 1,
      lastDemandAt: now,
      granted: { ...NO_USAGE, leases: 0 },
    };
  }

  /** The state to carry into the next run (plain JSON). */
  getState(): KeyLeaseBookState {
    return this.s;
  }

  /** Records limits a worker is configured with; see {@link effectiveLimits}. */
  noteLimits(limits: KeyLimits, now: number): void {
    const clean = withoutUndefined(limits);
    const key = JSON.stringify(clean);
    const known = this.s.reportedLimits.find((r) => JSON.stringify(r.limits) === key);
    if (known) known.at = Math.max(known.at, now);
    else this.s.reportedLimits.push({ limits: clean, at: now });
  }

  /**
   * The limits in force: for each field, the lowest any worker reported within the limits
   * memory (the latest report always counts). Workers that disagree (a rolling change of tier,
   * a stale configuration) are then all kept within; a raised limit takes effect once no worker
   * has reported the old one for the memory's length.
   */
  effectiveLimits(now: number): KeyLimits {
    const counted = this.countedLimits(now);
    const lowest = (field: keyof KeyLimits): number | undefined => {
      const values = counted.map((r) => r.limits[field]).filter((v): v is number => v !== undefined);
      return values.length > 0 ? Math.min(...values) : undefined;
    };
    return withoutUndefined({
      rpm: lowest('rpm'),
      inputTpm: lowest('inputTpm'),
      outputTpm: lowest('outputTpm'),
    });
  }

  /**
   * Takes a demand: hands its returned tokens back to the window, records its limits, puts the
   * batch in the rotation, and allocates at once. Returns the demand's id; when
   * {@link isSettled} says so, {@link collect} its grant.
   */
  demand(request: KeyDemand & { limits?: KeyLimits }, now: number): number {
    if (request.limits) this.noteLimits(request.limits, now);
    this.prune(now);
    for (const returned of request.returned ?? []) this.takeBack(request.batchId, returned);
    this.s.lastDemandAt = Math.max(this.s.lastDemandAt, now);
    const priority = Math.max(1, Math.floor(request.priority ?? 1));
    let slot = this.s.rotation.find((r) => r.batchId === request.batchId);
    if (!slot) {
      slot = { batchId: request.batchId, priority, lastDemandAt: now };
      this.s.rotation.push(slot);
    }
    slot.priority = priority;
    slot.lastDemandAt = now;
    delete slot.heldUntil;
    const id = this.s.nextDemandId++;
    this.s.demands.push({
      id,
      batchId: request.batchId,
      requests: request.requests,
      inputTokens: request.inputTokens,
      outputTokens: request.outputTokens,
      arrivedAt: now,
      deadline: now + this.maxWaitMs,
      granted: { ...NO_USAGE },
    });
    this.allocate(now);
    return id;
  }

  /**
   * Hands out what the window has room for now, one request at a time round-robin over the
   * waiting batches. Stops when the batch whose turn it is does not fit (it will be first when
   * room frees: {@link nextWakeAt} says when), or when the turn reaches a batch that is held.
   */
  allocate(now: number): void {
    this.prune(now);
    delete this.s.resumeAt;
    const rotation = this.s.rotation;
    if (!this.s.demands.some(isOpen)) return;
    const limits = this.effectiveLimits(now);
    const usage = this.usage(now);
    let passedOver = 0;
    while (rotation.length > 0 && passedOver < rotation.length) {
      const slot = rotation[this.s.turn]!;
      const demand = this.openDemandOf(slot.batchId);
      if (!demand) {
        // A held turn stays put, whoever else waits: passing it over (even to serve the only
        // batch waiting) would hand that batch a second turn in the same round.
        if (slot.heldUntil !== undefined && slot.heldUntil > now) {
          if (this.s.demands.some(isOpen)) this.s.resumeAt = slot.heldUntil;
          return;
        }
        // Not back within the hold: the batch loses this turn.
        this.nextTurn();
        passedOver++;
        continue;
      }
      const unit = nextUnit(demand);
      if (!fits(unit, usage, limits)) {
        this.s.resumeAt = now + this.roomWaitMs(unit, limits, now);
        return;
      }
      demand.granted.requests += 1;
      demand.granted.inputTokens += unit.inputTokens;
      demand.granted.outputTokens += unit.outputTokens;
      usage.requests += 1;
      usage.inputTokens += unit.inputTokens;
      usage.outputTokens += unit.outputTokens;
      this.count(slot.batchId, unit, now);
      passedOver = 0;
      this.s.servedInTurn += 1;
      // A batch whose demand ran out before its turn did keeps the turn (held) for its next
      // demand: a batch of priority 2 asking for one request at a time still gets two a round.
      if (!this.openDemandOf(slot.batchId)) slot.heldUntil = now + this.turnHoldMs;
      if (this.s.servedInTurn >= slot.priority) this.nextTurn();
    }
  }

  /** Gives a zero grant to every demand whose wait ran out by `now` (call after {@link allocate}). */
  expire(now: number): void {
    for (const demand of this.s.demands) {
      if (demand.expired || demand.granted.requests > 0 || demand.deadline > now) continue;
      this.expireDemand(demand, now);
    }
  }

  /**
   * Ends every wait at once (the limiter is about to continue as new): zero grants, each batch
   * keeping its turn for its `retryAfterMs` plus the hold, so the next run serves it in order.
   */
  settleAll(now: number): void {
    for (const demand of this.s.demands) {
      if (demand.expired || demand.granted.requests > 0) continue;
      this.expireDemand(demand, now);
    }
  }

  /** Whether demand `id` has its answer: at least one request granted, or a zero grant. */
  isSettled(id: number): boolean {
    const demand = this.s.demands.find((d) => d.id === id);
    return demand === undefined || demand.expired === true || demand.granted.requests > 0;
  }

  /**
   * Removes demand `id` and returns its grant; a demand still waiting gets a zero grant. The
   * batch keeps its turn for a while (see {@link RotationSlot.heldUntil}).
   */
  collect(id: number, now: number): KeyGrant {
    const index = this.s.demands.findIndex((d) => d.id === id);
    if (index < 0) return { ...NO_USAGE, grantedAt: now, retryAfterMs: 0 };
    const demand = this.s.demands[index]!;
    if (!demand.expired && demand.granted.requests === 0) this.expireDemand(demand, now);
    this.s.demands.splice(index, 1);
    const slot = this.s.rotation.find((r) => r.batchId === demand.batchId);
    if (slot && !this.openDemandOf(demand.batchId)) {
      const hold = now + (demand.retryAfterMs ?? 0) + this.turnHoldMs;
      slot.heldUntil = Math.max(slot.heldUntil ?? 0, hold);
    }
    if (demand.granted.requests === 0) {
      return { ...NO_USAGE, grantedAt: now, retryAfterMs: demand.retryAfterMs ?? 0 };
    }
    this.s.granted.leases += 1;
    this.s.granted.requests += demand.granted.requests;
    this.s.granted.inputTokens += demand.granted.inputTokens;
    this.s.granted.outputTokens += demand.granted.outputTokens;
    return { ...demand.granted, grantedAt: now };
  }

  /** Whether any demand is waiting for capacity. */
  hasOpenDemands(): boolean {
    return this.s.demands.some(isOpen);
  }

  /** Demands not yet collected (waiting or answered). */
  get pendingDemands(): number {
    return this.s.demands.length;
  }

  /**
   * When something can change for the demands waiting: room frees for the batch whose turn it
   * is, a held turn lapses, or a wait runs out. `undefined` when nothing waits.
   */
  nextWakeAt(now: number): number | undefined {
    const open = this.s.demands.filter(isOpen);
    if (open.length === 0) return undefined;
    const deadline = Math.min(...open.map((d) => d.deadline));
    return Math.max(now, Math.min(deadline, this.s.resumeAt ?? deadline));
  }

  /**
   * From when the limiter may end for lack of demand: `idleMs` after the last demand, and not
   * before every grant has left the window (a new run would start from an empty window).
   */
  endsIdleAt(idleMs: number): number {
    const last = this.s.window.at(-1);
    const windowEmptyAt = last ? last.at + this.windowMs + this.marginMs : 0;
    return Math.max(this.s.lastDemandAt + idleMs, windowEmptyAt);
  }

  /** Requests and tokens counted in the window at `now`. */
  usage(now: number): KeyUsage {
    const horizon = now - this.windowMs - this.marginMs;
    const total = { ...NO_USAGE };
    for (const entry of this.s.window) {
      if (entry.at <= horizon) continue;
      total.requests += entry.requests;
      total.inputTokens += entry.inputTokens;
      total.outputTokens += entry.outputTokens;
    }
    return total;
  }

  /** Lifetime totals granted by this book (across runs). */
  get totals(): Readonly<KeyUsage & { leases: number }> {
    return this.s.granted;
  }

  /** Batches in the rotation. */
  get batches(): number {
    return this.s.rotation.length;
  }

  /**
   * Milliseconds until the window has room for `unit` on top of what it counts, were no other
   * batch waiting (the semantics of `rateWaitMs`, over entries that each hold several requests).
   */
  roomWaitMs(unit: Omit<KeyUsage, 'requests'>, limits: KeyLimits, now: number): number {
    const horizon = now - this.windowMs - this.marginMs;
    const live = this.s.window.filter((e) => e.at > horizon);
    if (live.length === 0) return 0;
    let wait = 0;
    const need = (limit: number | undefined, amount: number, of: (e: KeyWindowEntry) => number): void => {
      if (limit === undefined) return;
      let used = live.reduce((sum, e) => sum + of(e), 0);
      for (let i = 0; used + amount > limit && i < live.length; i++) {
        used -= of(live[i]!);
        wait = Math.max(wait, live[i]!.at + this.windowMs + this.marginMs - now);
      }
    };
    need(limits.rpm, 1, (e) => e.requests);
    need(limits.inputTpm, unit.inputTokens, (e) => e.inputTokens);
    need(limits.outputTpm, unit.outputTokens, (e) => e.outputTokens);
    return Math.max(0, wait);
  }

  private expireDemand(demand: OpenDemand, now: number): void {
    demand.expired = true;
    const limits = this.effectiveLimits(now);
    demand.retryAfterMs = this.roomWaitMs(nextUnit(demand), limits, now);
  }

  /** The batch's oldest demand still wanting requests. */
  private openDemandOf(batchId: string): OpenDemand | undefined {
    return this.s.demands.find((d) => d.batchId === batchId && isOpen(d));
  }

  private nextTurn(): void {
    this.s.servedInTurn = 0;
    this.s.turn = this.s.rotation.length === 0 ? 0 : (this.s.turn + 1) % this.s.rotation.length;
  }

  /** Adds granted capacity to the window, one entry per batch and instant. */
  private count(batchId: string, unit: Omit<KeyUsage, 'requests'>, now: number): void {
    const window = this.s.window;
    for (let i = window.length - 1; i >= 0 && window[i]!.at === now; i--) {
      const entry = window[i]!;
      if (entry.batchId !== batchId) continue;
      entry.requests += 1;
      entry.inputTokens += unit.inputTokens;
      entry.outputTokens += unit.outputTokens;
      return;
    }
    window.push({ batchId, at: now, requests: 1, ...unit });
  }

  /**
   * Takes unused tokens off the batch's entries granted at or before the grant they came from,
   * latest first. Only those: a request's real use counts at its own grant, so crediting it to a
   * later entry would keep the credit after the use itself left the window and let the key
   * overrun. Tokens whose grant has left the window are dropped; their use left with it.
   */
  private takeBack(batchId: string, returned: ReturnedTokens): void {
    let input = Math.max(0, returned.inputTokens);
    let output = Math.max(0, returned.outputTokens);
    for (let i = this.s.window.length - 1; i >= 0 && (input > 0 || output > 0); i--) {
      const entry = this.s.window[i]!;
      if (entry.batchId !== batchId || entry.at > returned.grantedAt) continue;
      const inputOff = Math.min(input, entry.inputTokens);
      const outputOff = Math.min(output, entry.outputTokens);
      entry.inputTokens -= inputOff;
      entry.outputTokens -= outputOff;
      input -= inputOff;
      output -= outputOff;
    }
  }

  /** Reports still counted at `now`: the recent ones, and always the latest. */
  private countedLimits(now: number): ReportedLimits[] {
    const reports = this.s.reportedLimits;
    if (reports.length === 0) return [];
    const latest = Math.max(...reports.map((r) => r.at));
    return reports.filter((r) => r.at === latest || r.at > now - this.limitsMemoryMs);
  }

  /**
   * Drops grants out of the window, limits no worker reported for the memory's length, and
   * batches that have not asked for a window's length: the carried state stays small.
   */
  private prune(now: number): void {
    this.s.reportedLimits = this.countedLimits(now);
    const horizon = now - this.windowMs - this.marginMs;
    const window = this.s.window;
    let drop = 0;
    while (drop < window.length && window[drop]!.at <= horizon) drop++;
    if (drop > 0) window.splice(0, drop);
    for (let i = this.s.rotation.length - 1; i >= 0; i--) {
      const slot = this.s.rotation[i]!;
      const waiting = this.s.demands.some((d) => d.batchId === slot.batchId);
      const held = slot.heldUntil !== undefined && slot.heldUntil > now;
      if (waiting || held || slot.lastDemandAt > horizon) continue;
      this.s.rotation.splice(i, 1);
      if (i < this.s.turn) this.s.turn -= 1;
      else if (i === this.s.turn) this.s.servedInTurn = 0;
      if (this.s.turn >= this.s.rotation.length) this.s.turn = 0;
    }
  }
}

/** Whether a demand still wants requests and still waits. */
function isOpen(demand: OpenDemand): boolean {
  return !demand.expired && demand.granted.requests < demand.requests;
}

/**
 * The tokens of the demand's next request: its share of the demand's tokens, rounded up so the
 * shares add up to the demand exactly and no request is counted below its share.
 */
function nextUnit(demand: OpenDemand): Omit<KeyUsage, 'requests'> {
  const k = Math.min(demand.granted.requests + 1, demand.requests);
  const share = (total: number) => Math.ceil((total * k) / demand.requests);
  return {
    inputTokens: share(demand.inputTokens) - demand.granted.inputTokens,
    outputTokens: share(demand.outputTokens) - demand.granted.outputTokens,
  };
}

/** Whether one more request of `unit` fits the limits on top of `usage`; anything fits an empty window. */
function fits(unit: Omit<KeyUsage, 'requests'>, usage: KeyUsage, limits: KeyLimits): boolean {
  if (usage.requests === 0) return true;
  if (limits.rpm !== undefined && usage.requests + 1 > limits.rpm) return false;
  if (limits.inputTpm !== undefined && usage.inputTokens + unit.inputTokens > limits.inputTpm) return false;
  if (limits.outputTpm !== undefined && usage.outputTokens + unit.outputTokens > limits.outputTpm)
    return false;
  return true;
}

/** Zod schema of one returned-tokens record. */
const returnedTokensSchema = z.strictObject({
  grantedAt: z.number({ error: 'must be a number' }).nonnegative(),
  inputTokens: z.number({ error: 'must be a number' }).int().nonnegative(),
  outputTokens: z.number({ error: 'must be a number' }).int().nonnegative(),
});

/** The `leaseKeyCapacity` update's argument, checked by the limiter's validator. */
export const keyLeaseRequestSchema = z.strictObject({
  batchId: z.string({ error: 'must be a string' }).min(1, { error: 'must not be empty' }).max(1000),
  requests: z
    .number({ error: 'must be a number' })
    .int({ error: 'must be a whole number' })
    .min(1, { error: 'must be at least 1' })
    .max(100_000, { error: 'must be at most 100000' }),
  inputTokens: z.number({ error: 'must be a number' }).int().nonnegative(),
  outputTokens: z.number({ error: 'must be a number' }).int().nonnegative(),
  priority: z.number({ error: 'must be a number' }).int().min(1).max(100).optional(),
  returned: z.array(returnedTokensSchema).max(10_000).optional(),
  // Workers without limits never ask, so an empty object is as wrong here as in the env var.
  limits: keyLimitsSchema,
});

/** What is wrong with a `leaseKeyCapacity` argument, field by field on one line, or `undefined`. */
export function keyLeaseRequestIssues(value: unknown): string | undefined {
  const parsed = validateWith(keyLeaseRequestSchema, value);
  return parsed.ok ? undefined : describeIssues(parsed.issues);
}

/** Default time without demand after which a key limiter ends. */
export const DEFAULT_KEY_LIMITER_IDLE_MS = 10 * 60_000;
/** Default history length after which a key limiter continues as new. */
export const DEFAULT_KEY_LIMITER_HISTORY_EVENT_LIMIT = 2_000;

/** Input of the `maritacaKeyLimiter` workflow. Durations are for tests; production uses the defaults. */
export interface KeyLimiterInput extends KeyLeaseBookConfig {
  /** The key's limits as the starting worker knows them (later demands carry their own). */
  limits: KeyLimits;
  /** The previous run's book (continue-as-new). */
  carried?: KeyLeaseBookState;
  /** End after this long without demand (default 10 min), once the window is empty. */
  idleMs?: number;
  /** Continue as new once the history has this many events (default 2,000). */
  historyEventLimit?: number;
}

/** What a key limiter returns when it ends for lack of demand. */
export interface KeyLimiterResult {
  endedBy: 'idle';
  /** Lifetime totals across its runs. */
  granted: KeyUsage & { leases: number };
}

/** What the `keyLimiterStatus` query answers. */
export interface KeyLimiterStatus {
  /** The limits in force (the lowest reported recently). */
  limits: KeyLimits;
  /** Requests and tokens counted in the window now. */
  usage: KeyUsage;
  /** Demands waiting for capacity. */
  waiting: number;
  /** Batches in the rotation. */
  batches: number;
  /** Lifetime totals across runs. */
  granted: KeyUsage & { leases: number };
}

/** What the `leaseKeyCapacity` activity returns: a grant, or `unlimited` when the worker has no limits. */
export type KeyLease = { unlimited: true } | (KeyGrant & { unlimited?: false });

const durationField = z.number({ error: 'must be a number' }).positive().optional();

/** The limiter's input, checked when a run starts (the carried book is the limiter's own). */
export const keyLimiterInputSchema = z.object({
  limits: keyLimitsSchema,
  carried: z.custom<KeyLeaseBookState>((v) => typeof v === 'object' && v !== null).optional(),
  windowMs: durationField,
  marginMs: z.number({ error: 'must be a number' }).nonnegative().optional(),
  maxWaitMs: durationField,
  turnHoldMs: z.number({ error: 'must be a number' }).nonnegative().optional(),
  limitsMemoryMs: durationField,
  idleMs: durationField,
  historyEventLimit: z.number({ error: 'must be a number' }).int().min(100).optional(),
});
