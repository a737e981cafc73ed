/**
 * Tokens Maritaca's chat template adds around the messages of a request, on top of their
 * content: `perRequest` once, `perMessage` for each message.
 */
export interface TemplateOverhead {
  perRequest: number;
  perMessage: number;
}

/**
 * The figure used until a batch has seen an answer of its own. Maritaca does not publish its
 * template; the ChatML template its vocabulary was built for adds 3 tokens per request and 5
 * per message, so this allows for about three times that. Estimates made with it are a little
 * high, never low, which is what lets the estimate itself be approved as the budget.
 */
export const DEFAULT_TEMPLATE_OVERHEAD: Readonly<TemplateOverhead> = { perRequest: 16, perMessage: 16 };

/** Template tokens of a request with `messages` messages under `overhead`. */
export function templateTokens(overhead: TemplateOverhead, messages: number): number {
  return Math.ceil(overhead.perRequest + overhead.perMessage * messages);
}

/**
 * Template overhead a batch has seen, by model and message count (`sabia-4/2`): the most
 * `usage.prompt_tokens` ever exceeded the exact content count by for such a request.
 */
export type LearnedOverheads = Record<string, number>;

/**
 * Key of {@link LearnedOverheads} for a request of `model` with `messages` messages; a request
 * with tools or a JSON response format is a shape of its own (`+tools`, `+json`), since the
 * template renders those in its own way.
 */
export function overheadKey(model: string, messages: number, shape = ''): string {
  return `${model}/${messages}${shape}`;
}

/** The shape suffix of {@link overheadKey} for a call's tools and response format. */
export function overheadShape(call: {
  tools?: readonly unknown[];
  responseFormat?: { type: string };
}): string {
  return (
    (call.tools && call.tools.length > 0 ? '+tools' : '') +
    (call.responseFormat && call.responseFormat.type !== 'text' ? '+json' : '')
  );
}

/**
 * The per-model figure a batch has learned, in the form the `templateOverhead` option takes, so
 * the next batch's estimate can start from it. Two message counts seen give both terms; one
 * gives the whole overhead per message (exact for requests of that length).
 */
export function learnedTemplateOverheads(learned: LearnedOverheads): Record<string, TemplateOverhead> {
  const points = new Map<string, { messages: number; tokens: number }[]>();
  for (const [key, tokens] of Object.entries(learned)) {
    // Shapes with tools or JSON formats are exact for their own requests only.
    if (key.includes('+')) continue;
    const at = key.lastIndexOf('/');
    const model = key.slice(0, at);
    const list = points.get(model) ?? [];
    list.push({ messages: Number(key.slice(at + 1)), tokens });
    points.set(model, list);
  }
  const figures: Record<string, TemplateOverhead> = {};
  for (const [model, list] of points) {
    list.sort((a, b) => a.messages - b.messages);
    const first = list[0]!;
    const last = list.at(-1)!;
    if (last.messages === first.messages) {
      figures[model] = { perRequest: 0, perMessage: first.tokens / first.messages };
      continue;
    }
    // The steepest slope between seen counts keeps the figure at or above every point seen.
    let perMessage = 0;
    for (let i = 1; i < list.length; i += 1) {
      const a = list[i - 1]!;
      const b = list[i]!;
      perMessage = Math.max(perMessage, (b.tokens - a.tokens) / (b.messages - a.messages));
    }
    const perRequest = Math.max(...list.map((p) => p.tokens - perMessage * p.messages));
    figures[model] = { perRequest: Math.max(0, perRequest), perMessage: Math.max(0, perMessage) };
  }
  return figures;
}
