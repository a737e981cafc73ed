/**
 * The estimate counts prompt content with Maritaca's own tokenizer for every model it covers and
 * says so; the heuristic remains for models without one.
 */
import { estimateBatchCost, estimateMessageTokens } from '../../src';
import { countingOf, textTokenBound } from '../../src/activities/estimate-cost';
import {
  MESSAGE_OVERHEAD_TOKENS,
  REQUEST_OVERHEAD_TOKENS,
  estimateTextTokens,
} from '../../src/activities/token-estimate';
import { DEFAULT_TEMPLATE_OVERHEAD, templateTokens } from '../../src/shared';
import { countTokens } from '../../src/tokenizer';

const messages = [
  { role: 'system' as const, content: 'Você é um assistente que responde em português, com precisão.' },
  { role: 'user' as const, content: 'Resuma a cláusula 7ª do contrato nº 2026/11: "O LOCATÁRIO pagará…" 🙂' },
];

describe('exact token counts in the estimate', () => {
  test('content is counted with the model family tokenizer, the template overhead added', () => {
    const content = messages.reduce((sum, m) => sum + countTokens(m.content, 'sabia-4')!, 0);
    expect(estimateMessageTokens(messages, 'sabia-4')).toBe(
      content + REQUEST_OVERHEAD_TOKENS + MESSAGE_OVERHEAD_TOKENS * messages.length,
    );
    const requests = [
      { messages, model: 'sabia-4', maxTokens: 30 },
      { messages, model: 'sabiazinho-3', maxTokens: 30 },
    ];
    const estimate = estimateBatchCost({ model: 'sabia-4', requests });
    const conservative = templateTokens(DEFAULT_TEMPLATE_OVERHEAD, messages.length);
    expect(estimate.perRequestInputTokens).toEqual([content + conservative, content + conservative]);
    expect(estimate.perRequestContentTokens).toEqual([content, content]);
    expect(estimate.inputTokenCount).toBe('exact');
    // Counted exactly, the estimate is its own worst case: approving it covers the batch.
    expect(estimate.maxCost).toBe(estimate.totalCost);
    const learned = estimateBatchCost({
      model: 'sabia-4',
      requests,
      templateOverhead: { perRequest: 3, perMessage: 5 },
    });
    expect(learned.perRequestInputTokens).toEqual([content + 13, content + 13]);
  });

  test('a prompt without a tokenizer is bounded by one token per UTF-8 byte', () => {
    expect(textTokenBound(['ação 🙂'])).toBe(Buffer.byteLength('ação 🙂'));
  });

  test('without a model the heuristic counts, as before', () => {
    const heuristic =
      REQUEST_OVERHEAD_TOKENS +
      messages.reduce((sum, m) => sum + MESSAGE_OVERHEAD_TOKENS + estimateTextTokens(m.content), 0);
    expect(estimateMessageTokens(messages)).toBe(heuristic);
  });

  test('the label says how a batch was counted', () => {
    expect(countingOf(3, 3)).toBe('exact');
    expect(countingOf(0, 3)).toBe('heuristic');
    expect(countingOf(1, 3)).toBe('mixed');
  });
});
