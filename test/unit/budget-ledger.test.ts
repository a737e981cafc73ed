import { BudgetLedger, COST_EPSILON, emptyLedger, type ApprovalRecord } from '../../src/shared';

const approval = (budget: number): ApprovalRecord => ({
  budget,
  via: 'signal',
  at: '2025-01-01T00:00:00.000Z',
});

/** A ledger for a batch estimated at 1.00 BRL (worst case 2.00), with `budget` approved. */
function ledger(budget?: number): BudgetLedger {
  const l = new BudgetLedger(emptyLedger());
  l.setEstimate(1, 2);
  if (budget !== undefined) l.approve(approval(budget));
  return l;
}

describe('BudgetLedger', () => {
  test('before any approval nothing costly fits and there is no budget to show', () => {
    const l = ledger();
    expect(l.approved).toBeNull();
    expect(l.fits(0.01)).toBe(false);
    expect(l.fits(0)).toBe(true);
    expect(l.budgetState()).toBeNull();
    expect(l.neededToFinish).toBe(2);
  });

  test('the last approval is in force; fits allows rounding noise and nothing more', () => {
    const l = ledger(1);
    l.approve(approval(1.5));
    expect(l.approved).toBe(1.5);
    expect(l.fits(1.5)).toBe(true);
    expect(l.fits(1.5 + COST_EPSILON / 2)).toBe(true);
    expect(l.fits(1.5 + 2 * COST_EPSILON)).toBe(false);
    l.approve(approval(0.5));
    expect(l.approved).toBe(0.5);
    expect(l.state.approvals.map((a) => a.budget)).toEqual([1, 1.5, 0.5]);
  });

  test('a reservation holds the worst case and counts the request as sent', () => {
    const l = ledger(1.5);
    l.reserve(0, 0.3, 0.5);
    expect(l.reserved).toBe(0.5);
    expect(l.state.reservations).toEqual({ 0: 0.5 });
    expect(l.restCost).toBe(0.7);
    expect(l.restMaxCost).toBe(1.5);
    expect(l.neededToFinish).toBe(2);
    // 0.5 held: 1.0 more fits in 1.5, 1.01 does not.
    expect(l.fits(1)).toBe(true);
    expect(l.fits(1.01)).toBe(false);
  });

  test('settle spends the real cost and gives the reservation back; the request stays sent', () => {
    const l = ledger(1.5);
    l.reserve(0, 0.3, 0.5);
    l.settle(0, 0.2);
    expect(l.spent).toBe(0.2);
    expect(l.reserved).toBe(0);
    expect(l.state.reservations).toEqual({});
    expect(l.restCost).toBe(0.7);
    expect(l.restMaxCost).toBe(1.5);
    expect(l.neededToFinish).toBe(1.7);
  });

  test('release (a failure) gives the reservation back, spends nothing and keeps the request sent', () => {
    const l = ledger(1.5);
    l.reserve(2, 0.3, 0.5);
    l.release(2);
    expect(l.spent).toBe(0);
    expect(l.reserved).toBe(0);
    expect(l.restCost).toBe(0.7);
    expect(l.restMaxCost).toBe(1.5);
    // Releasing again, or a request never reserved, changes nothing.
    l.release(2);
    l.release(9);
    expect(l.reserved).toBe(0);
  });

  test('requeue (a 429) gives the reservation back and counts the request as not sent', () => {
    const l = ledger(1.5);
    l.reserve(1, 0.3, 0.5);
    l.requeue(1, 0.3, 0.5);
    expect(l.spent).toBe(0);
    expect(l.reserved).toBe(0);
    expect(l.restCost).toBe(1);
    expect(l.restMaxCost).toBe(2);
    expect(l.neededToFinish).toBe(2);
  });

  test('sums are rounded to 1e-9 BRL, and the rest never goes negative', () => {
    const l = ledger(10);
    l.reserve(0, 0.1, 0.1);
    l.reserve(1, 0.2, 0.2);
    expect(l.reserved).toBe(0.3);
    l.settle(0, 0.1);
    l.settle(1, 0.2);
    expect(l.spent).toBe(0.3);
    // Requests that cost more than the estimate: the rest is 0, not negative.
    l.reserve(2, 0.9, 1.9);
    expect(l.restCost).toBe(0);
    expect(l.restMaxCost).toBe(0);
  });

  test('budgetState shows approved, spent, reserved, remaining and the rest', () => {
    const l = ledger(1.5);
    l.reserve(0, 0.3, 0.5);
    l.settle(0, 0.25);
    l.reserve(1, 0.3, 0.5);
    expect(l.budgetState()).toEqual({
      approved: 1.5,
      spent: 0.25,
      reserved: 0.5,
      remaining: 0.75,
      restEstimate: 0.4,
      restMaxCost: 1,
    });
  });

  test('the state is plain JSON: a ledger over a copy reads the same', () => {
    const l = ledger(1.5);
    l.reserve(0, 0.3, 0.5);
    l.settle(0, 0.2);
    l.reserve(1, 0.3, 0.5);
    const copy = new BudgetLedger(JSON.parse(JSON.stringify(l.state)));
    expect(copy.budgetState()).toEqual(l.budgetState());
    expect(copy.neededToFinish).toBe(l.neededToFinish);
    copy.requeue(1, 0.3, 0.5);
    expect(copy.reserved).toBe(0);
    expect(l.reserved).toBe(0.5);
  });
});
