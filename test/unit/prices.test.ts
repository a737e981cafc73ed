import { MODEL_PRICES, estimateBatchCost, priceOf } from '../../src';

describe('prices and the batch estimate', () => {
  test('prices a call per million tokens, cached input at the cached rate', () => {
    expect(priceOf('sabia-4', { promptTokens: 1_000_000, completionTokens: 0 })).toBe(5);
    expect(priceOf('sabia-4', { promptTokens: 0, completionTokens: 1_000_000 })).toBe(20);
    expect(
      priceOf('sabia-4', { promptTokens: 1_000_000, completionTokens: 0, cachedPromptTokens: 1_000_000 }),
    ).toBe(1.25);
    expect(
      priceOf('sabiazinho-4-br-sp', { promptTokens: 1_000_000, completionTokens: 1_000_000 }),
    ).toBeCloseTo(6.5);
    expect(() => priceOf('gpt-4o', { promptTokens: 1, completionTokens: 1 })).toThrow(/gpt-4o/);
  });

  test('br-sp models cost 30% more than their base model', () => {
    for (const base of ['sabia-4', 'sabiazinho-4', 'sabia-4-thinking']) {
      expect(MODEL_PRICES[`${base}-br-sp`]!.input).toBeCloseTo(MODEL_PRICES[base]!.input * 1.3);
      expect(MODEL_PRICES[`${base}-br-sp`]!.output).toBeCloseTo(MODEL_PRICES[base]!.output * 1.3);
    }
  });

  test('estimates output at max_tokens and prices each request with its own model', () => {
    const messages = [{ role: 'user' as const, content: 'Qual é a capital do Brasil?' }];
    const estimate = estimateBatchCost({
      model: 'sabia-4',
      requests: [
        { messages, model: 'sabia-4', maxTokens: 500 },
        { messages, model: 'sabiazinho-4', maxTokens: 500 },
      ],
    });
    expect(estimate.totalRequests).toBe(2);
    expect(estimate.totalOutputTokens).toBe(1000);
    expect(estimate.outputCost).toBeCloseTo((500 * 20 + 500 * 4) / 1e6, 9);
    const perRequestInput = estimate.perRequestInputTokens[0]!;
    expect(perRequestInput).toBeGreaterThan(5);
    expect(estimate.inputCost).toBeCloseTo((perRequestInput * 5 + perRequestInput * 1) / 1e6, 9);
    expect(estimate.totalCost).toBeCloseTo(estimate.inputCost + estimate.outputCost, 9);
    expect(estimate.currency).toBe('BRL');
  });
});
