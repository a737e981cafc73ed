import type { z } from 'zod';
import type { TemplateOverhead } from './template-overhead';
import type { TemporalActions } from './temporal-actions';
import type { CallFailureDetails } from './failures';
import type {
  approveBudgetSchema,
  approveSchema,
  batchInputSchema,
  batchOptionsSchema,
  batchRequestSchema,
  messageSchema,
  rejectSchema,
  responseFormatSchema,
  retryOptionsSchema,
  toolChoiceSchema,
  toolSchema,
} from './schema';

/** One chat message. */
export type ChatMessage = z.infer<typeof messageSchema>;
/** A function the model may call (OpenAI format). */
export type Tool = z.infer<typeof toolSchema>;
/** Whether and which tool the model must call. */
export type ToolChoice = z.infer<typeof toolChoiceSchema>;
/** The form of the answer: text, a JSON object, or JSON matching a schema. */
export type ResponseFormat = z.infer<typeof responseFormatSchema>;
/** One request of a batch, as given by the caller. */
export type BatchRequest = z.infer<typeof batchRequestSchema>;
/** Options for the whole batch, as given by the caller. */
export type BatchOptions = z.infer<typeof batchOptionsSchema>;
/** Retry policy for each Maritaca call. */
export type RetryOptions = z.infer<typeof retryOptionsSchema>;
/** The `maritacaBatch` workflow's input. */
export type BatchInput = z.infer<typeof batchInputSchema>;
/** Payload of the `approve` signal. */
export type ApproveSignal = z.infer<typeof approveSchema>;
/** Argument of the `approveBudget` update. */
export type ApproveBudgetUpdate = z.infer<typeof approveBudgetSchema>;
/** Payload of the `reject` signal. */
export type RejectSignal = z.infer<typeof rejectSchema>;

/** Where a batch stands. Later versions may add states; these names never change. */
export type BatchStatus =
  | 'estimating'
  | 'awaiting_approval'
  | 'running'
  | 'completed'
  | 'rejected'
  | 'expired'
  | 'failed'
  | 'cancelled'
  | 'awaiting_budget'
  | 'budget_exhausted'
  | 'paused'
  /** Maritaca refused the worker's key or account (401, 402, 403): waits for `resume`. */
  | 'awaiting_credentials';

/** Cost estimate of a batch, in BRL; output is priced at each request's `max_tokens`. */
export interface BatchEstimate {
  totalRequests: number;
  totalInputTokens: number;
  totalOutputTokens: number;
  inputCost: number;
  outputCost: number;
  totalCost: number;
  currency: 'BRL';
  /** The batch's default model (requests may name others; their prices are used for them). */
  model: string;
  /**
   * The most the batch can cost: every answer at `max_tokens`, every prompt at its exact count
   * plus the template overhead in use (for a model without Maritaca's tokenizer, one token per
   * UTF-8 byte plus that overhead). Equal to `totalCost` when every prompt is counted exactly.
   */
  maxCost: number;
  /**
   * How the input tokens were counted: `exact` (every request's model has Maritaca's own tokenizer;
   * the chat template's few tokens per message are still estimated), `heuristic` (none has:
   * the Portuguese-aware estimate), or `mixed`. Absent in estimates of earlier versions.
   */
  inputTokenCount?: InputTokenCount;
  /** Prompt tokens of tool definitions and response-format schemas (part of `totalInputTokens`). */
  toolTokens?: number;
  /** Images in the prompts, and the tokens counted for them at the per-image bound (part of `totalInputTokens`). */
  images?: number;
  imageTokens?: number;
  /**
   * The Temporal actions the batch is expected to take (calls within one heartbeat interval,
   * nothing failing) and their price at Temporal Cloud's rate: the orchestration's bill beside
   * Maritaca's. Absent in estimates of earlier versions.
   */
  temporalActions?: TemporalActions;
}

/** How an estimate counted input tokens (see {@link BatchEstimate.inputTokenCount}). */
export type InputTokenCount = 'exact' | 'heuristic' | 'mixed';

/** What `estimateCost` returns: the batch estimate plus the per-request figures behind it. */
export interface DetailedEstimate extends BatchEstimate {
  /** Estimated input tokens of each request, in input order. */
  perRequestInputTokens: number[];
  /** Worst-case cost of each request (input bound plus `max_tokens` output), in input order. */
  perRequestMaxCost: number[];
  /** Estimated cost of each request (input estimate plus `max_tokens` output), in input order. */
  perRequestCost: number[];
  /** Exact content tokens of each request (null where its model has no tokenizer), in input order. */
  perRequestContentTokens: (number | null)[];
}

/** Token usage of one call, LangChain-style. */
export interface TokenUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  cachedPromptTokens?: number;
}

/** A call to a function the model asked for, as Maritaca sent it (`arguments` is JSON text). */
export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** A tool call with its arguments parsed (left as text when they are not JSON). */
export interface ParsedToolCall {
  id: string;
  name: string;
  arguments: unknown;
}

/** One generated answer, LangChain-style. */
export interface ChatGeneration {
  text: string;
  /** The answer as Maritaca sent it: `content` ('' when it only calls tools) and any `tool_calls`. */
  message: { role: 'assistant'; content: string; tool_calls?: ToolCall[] };
  generationInfo: { finishReason: string | null };
}

/** The result of one chat call; mirrors LangChain's `ChatResult`. */
export interface ChatResult {
  generations: ChatGeneration[];
  llmOutput: { tokenUsage: TokenUsage; model: string };
  /** The functions the answer calls, arguments parsed. */
  toolCalls?: ParsedToolCall[];
  /**
   * The structured answer, for a request asking for JSON (`responseFormat`) or forcing a
   * function (its arguments): parsed, and checked against the schema when there is one.
   */
  parsed?: unknown;
}

/** A failure of one request, after its retries. */
export interface RequestError {
  /** Failure type, one of {@link FailureTypes}'s values. */
  type: string;
  message: string;
  /** HTTP status Maritaca answered with, when there was one. */
  status?: number;
}

/** The outcome of one request, reported in input order. */
export type RequestOutcome =
  | { id: string; index: number; ok: true; result: ChatResult; attempts: number; cost: number }
  | { id: string; index: number; ok: false; error: RequestError; attempts: number };

/** Who approved how much, and when. */
export interface ApprovalRecord {
  budget: number;
  approvedBy?: string;
  /** ISO timestamp. */
  at: string;
  /** How it arrived: the `approve` signal, the `approveBudget` update, or `autoApproveBelow`. */
  via: 'signal' | 'update' | 'auto';
}

/** What a batch is waiting for, when it is not making progress on its own. */
export type WaitingFor =
  | 'approval'
  | 'budget'
  | 'rate_limit'
  | 'retry_after'
  | 'pause'
  /** The key or account was refused: `resume` once the worker's key is fixed. */
  | 'credentials'
  /** Maritaca is unreachable or failing: one probe call at a time, at growing intervals. */
  | 'api_unavailable'
  | null;

/** Budget figures of a running batch (BRL). */
export interface BudgetState {
  /** The approved budget. */
  approved: number;
  /** Spent so far (sum of finished calls' costs). */
  spent: number;
  /** Held for calls in flight (their worst case). */
  reserved: number;
  /** approved - spent - reserved. */
  remaining: number;
  /**
   * Part of `spent` that is a worst case, not a bill: calls whose outcome is unknown (timed out,
   * abandoned, worker lost) and answers without `usage`. Absent in batches of earlier versions.
   */
  unconfirmed?: number;
  /** Estimated cost of the requests not started yet. */
  restEstimate: number;
  /** Worst-case cost of the requests not started yet. */
  restMaxCost: number;
}

/** Answer of the `progress` query. */
export interface BatchProgress {
  status: BatchStatus;
  total: number;
  completed: number;
  succeeded: number;
  failed: number;
  /**
   * Requests handed to workers and not settled yet. With runs of calls (`callsPerActivity`) a
   * slot carries several, called one after another, so this may exceed the concurrency;
   * `concurrency.inUse` counts the slots.
   */
  inFlight: number;
  pending: number;
  estimate: BatchEstimate | null;
  approvedBudget: number | null;
  actualCost: number;
  currency: 'BRL';
  /** ISO timestamp of the workflow start. */
  startedAt: string;
  /** ISO timestamp of the last change. */
  updatedAt: string;
  approval: ApprovalRecord | null;
  rejectionReason: string | null;
  /** Every approval in order: the audit trail (the latest is `approval`). */
  approvals: ApprovalRecord[];
  /** What the batch waits for, if anything. */
  waitingFor: WaitingFor;
  /** Budget figures once approved, else `null`. */
  budget: BudgetState | null;
  /**
   * Concurrency cap (`maxConcurrency`, changed by `setConcurrency`), the window in force after
   * 429 back-off, and the slots in use (activities calling Maritaca now, at most one call each).
   */
  concurrency: { max: number; current: number; inUse: number };
  /** Paused by the `pause` signal. */
  paused: boolean;
  /** 429 answers seen so far. */
  rateLimitedResponses: number;
  /** Times those 429s cut the concurrency window (at most once per round trip since `api-health`). */
  windowCuts?: number;
  /** Why the batch failed, when its workflow failed, was terminated or timed out (set by the client). */
  failure?: string;
  /** Template overhead learned from this batch's answers, per model (pass it as `templateOverhead` next time). */
  templateOverhead?: Record<string, TemplateOverhead>;
  /** What Maritaca said when it refused the key or account (while `awaiting_credentials`). */
  credentialsError?: { status?: number; message: string };
  /** The outage the batch is waiting out (while `waitingFor` is `api_unavailable`). */
  apiOutage?: { since: string; nextProbeAt: string; probes: number; lastError: string };
}

/** What the `maritacaBatch` workflow returns. */
export interface BatchResult {
  status: BatchStatus;
  /** One outcome per request, in input order (empty when the batch never ran). */
  results: RequestOutcome[];
  estimate: BatchEstimate | null;
  approvedBudget: number | null;
  actualCost: number;
  currency: 'BRL';
  rejectionReason: string | null;
  /** Every approval in order. */
  approvals: ApprovalRecord[];
  /**
   * Set when outcomes were kept off the history (large batches): `results` is then empty and
   * the outcomes are read from here (the client's `result()` does it for you).
   */
  resultsRef?: ResultsRef;
  /** Runs the batch took (continue-as-new keeps each run's history bounded). */
  runs: number;
  /** Requests in the batch and how many succeeded and failed (absent from batches of earlier versions). */
  counts?: { total: number; succeeded: number; failed: number };
  /** Worst-case cost counted for calls whose outcome is unknown (part of what the budget saw as spent). */
  unconfirmedCost?: number;
  /** Template overhead learned from this batch's answers, per model. */
  templateOverhead?: Record<string, TemplateOverhead>;
  /**
   * Heartbeats the batch's Maritaca calls sent: Temporal actions its history does not show
   * (`BatchHandle.temporalActions()` adds them to what the history does).
   */
  heartbeats?: number;
}

/** Input of the `callMaritaca` activity: one fully resolved chat completion request. */
export interface CallMaritacaInput {
  requestId: string;
  /**
   * When set, the outcome is appended to this results store and (unless `returnResult`) not
   * returned, so answers stay off the workflow history; `index` is the request's position.
   */
  store?: {
    results: ResultsRef;
    index: number;
    /** Attempts and re-asks the request spent before this call, counted in the stored outcome. */
    attemptsBefore?: number;
    /** Return the answer too (an inline batch): the stored outcome is only a receipt. */
    returnResult?: boolean;
  };
  model: string;
  messages: ChatMessage[];
  maxTokens: number;
  temperature?: number;
  topP?: number;
  stop?: string | string[];
  tools?: Tool[];
  toolChoice?: ToolChoice;
  responseFormat?: ResponseFormat;
  seed?: number;
  frequencyPenalty?: number;
  presencePenalty?: number;
  /**
   * The request's attempt number across the batch and its limit, when the workflow schedules
   * each attempt itself (one activity attempt each): for logs that tell a retry from the last try.
   */
  requestAttempt?: { number: number; of: number };
  /**
   * The batch's `requestTimeout` for this call, when shorter than the worker's: a call in a run
   * must time out by itself, or its hang would hold the run until Temporal's timeout lost it all.
   */
  timeoutMs?: number;
}

/** Output of the `callMaritaca` activity. */
export interface CallMaritacaOutput {
  /** The answer; absent when it was written to the results store instead (`store` input). */
  result?: ChatResult;
  /** Token usage, always returned (rate window and budget need it); zeros when Maritaca sent none. */
  usage: { promptTokens: number; completionTokens: number };
  /** Maritaca answered without `usage`: the batch counts the call at its worst case. */
  usageMissing?: boolean;
  /** Cost of this call in BRL, from its usage. */
  cost: number;
  /** Attempt number that succeeded (1 for the first try). */
  attempt: number;
  /** Heartbeats the call sent (each a Temporal action). */
  heartbeats?: number;
  /** How long Maritaca took to answer, in ms (sizes the batch's runs of calls). */
  elapsedMs?: number;
}

/** A call found answered in the results store after its run was lost (`answeredInStore`). */
export interface AnsweredCall {
  index: number;
  cost: number;
  usage: { promptTokens: number; completionTokens: number };
  /** The answer, when asked for (an inline batch). */
  result?: ChatResult;
}

/** Input of the `callMaritacaRun` activity: requests called one after another in one slot. */
export interface CallMaritacaRunInput {
  calls: CallMaritacaInput[];
  /**
   * Start no call after this many ms of the run: slow answers (a long tail, hangs) give the
   * rest back to the workflow instead of holding them behind one slot.
   */
  startWithinMs?: number;
}

/** A call of a run that failed: the failure `callMaritaca` would have thrown, as data. */
export interface RunCallFailure {
  type: string;
  message: string;
  nonRetryable: boolean;
  details: CallFailureDetails;
}

/**
 * What became of one call of a run: answered, failed (a failure of its own, or the one that
 * stopped the run), aborted by a cancel (it may have been billed), or never started because the
 * run stopped before it.
 */
export type RunCallOutcome =
  | { kind: 'answered'; output: CallMaritacaOutput }
  | { kind: 'failed'; failure: RunCallFailure }
  | { kind: 'aborted' }
  | { kind: 'not_started' };

/** Output of the `callMaritacaRun` activity: one outcome per call, in input order. */
export interface CallMaritacaRunOutput {
  outcomes: RunCallOutcome[];
  /** Heartbeats the run sent (each a Temporal action). */
  heartbeats: number;
}

/** Input of the `estimateCost` activity. */
export interface EstimateCostInput {
  requests: {
    messages: ChatMessage[];
    model: string;
    maxTokens: number;
    tools?: Tool[];
    responseFormat?: ResponseFormat;
  }[];
  /** Tokens counted for each image (default: `DEFAULT_IMAGE_TOKEN_BOUND`). */
  imageTokenBound?: number;
  /** US$ per million Temporal actions (default: `DEFAULT_TEMPORAL_ACTION_PRICE_USD`). */
  temporalActionPrice?: number;
  /** Default model, reported in the estimate. */
  model: string;
  /** Template overhead to count (default: `DEFAULT_TEMPLATE_OVERHEAD`). */
  templateOverhead?: TemplateOverhead;
}

/** Answer of the `completions` query: finished requests in the order they finished. */
export interface CompletionsPage {
  /** Requests in the batch. */
  total: number;
  /** Requests finished so far. */
  completed: number;
  /** Position to ask for next (`from` + outcomes returned). */
  nextFrom: number;
  /** Outcomes from `from`, in completion order. */
  outcomes: RequestOutcome[];
  /** Batch status when the page was read. */
  status: BatchStatus;
}

/** Requests read page by page from outside the workflow input (large batches). */
export interface RequestSource {
  /** A JSONL file (OpenAI batch input lines or short-form lines), possibly sealed line by line. */
  type: 'jsonl';
  /** Where it is, as every worker can read it: `s3://bucket/key` or `file:///path`. */
  url?: string;
  /** Absolute path on the workers' disk: how batches started by earlier versions name their file. */
  path?: string;
  /** Requests in the file (counted when the batch was submitted). */
  count: number;
}

/** Where a batch's outcomes live when they are kept off the workflow history. */
export type ResultsRef =
  /** One object per outcome under `url`, folded into one object per page once the page is done. */
  | { type: 'objects'; url: string }
  /** An append-only JSONL file on the worker's disk (batches started by earlier versions). */
  | { type: 'jsonl'; path: string };

/** One request of a page, resolved and priced. */
export interface PageItem {
  index: number;
  call: CallMaritacaInput;
  /** Estimated input tokens. */
  inputTokens: number;
  /** Estimated cost (input estimate plus max_tokens output). */
  cost: number;
  /** Worst-case cost (input bound plus max_tokens output), as the estimate counted it. */
  maxCost: number;
  /**
   * Exact content tokens, when the model has Maritaca's tokenizer: with the template overhead
   * learned from the batch's answers, the reservation becomes exact. Absent in earlier versions.
   */
  contentTokens?: number;
  /** Prices (BRL per million tokens) the item was priced at, for re-pricing its reservation. */
  price?: { input: number; output: number };
}

/** Input of the `loadPage` activity. */
export interface LoadPageInput {
  /** Inline requests of this page (then `source` is absent). */
  requests?: BatchRequest[];
  source?: RequestSource;
  /** Index of the page's first request. */
  startIndex: number;
  /** Byte offset in the source file where the page starts. */
  byteOffset?: number;
  limit: number;
  options: BatchOptions;
}

/** Output of the `loadPage` activity. */
export interface LoadPageOutput {
  items: PageItem[];
  /** Byte offset of the next page in the source file. */
  nextByteOffset?: number;
}
