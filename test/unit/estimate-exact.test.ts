/**
 * The estimate counts prompt content with Maritaca's own tokenizer for every model it covers and
 * says so; the heuristic remains for models without one.
 */
import { estimateBatchCost, estimateMessageTokens } from '../../src';
import { countingOf } from '../../src/activities/estimate-cost';
import {
  MESSAGE_OVERHEAD_TOKENS,
  REQUEST_OVERHEAD_TOKENS,
  estimateTextTokens,
} from '../../src/activities/token-estimate';
import { countTokens } from '../../src/tokenizer';

const messages = [
  { role: 'system' as const, content: 'Você é um assistente que responde em português, com precisão.' },
  { role: 'user' as const, content: 'Resuma a cláusula 7ª do contrato nº 2026/11: "O LOCATÁRIO pagará…" 🙂' },
];

describe('exact token counts in the estimate', () => {
  test('content is counted with the model family tokenizer, the template overhead added', () => {
    const expected =
      REQUEST_OVERHEAD_TOKENS +
      messages.reduce((sum, m) => sum + MESSAGE_OVERHEAD_TOKENS + countTokens(m.content, 'sabia-4')!, 0);
    expect(estimateMessageTokens(messages, 'sabia-4')).toBe(expected);
    const estimate = estimateBatchCost({
      model: 'sabia-4',
      requests: [
        { messages, model: 'sabia-4', maxTokens: 30 },
        { messages, model: 'sabiazinho-3', maxTokens: 30 },
      ],
    });
    expect(estimate.perRequestInputTokens).toEqual([
      expected,
      estimateMessageTokens(messages, 'sabiazinho-3'),
    ]);
    expect(estimate.inputTokenCount).toBe('exact');
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
