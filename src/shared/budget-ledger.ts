import { addCosts } from './prices';
import type { ApprovalRecord, BudgetState } from './types';

/** Amounts below this are rounding noise, not money. */
export const COST_EPSILON = 1e-9;

/**
 * The money of a batch as plain JSON (it crosses continue-as-new and can be inspected): what was
 * approved, spent and is held for calls in flight, and how much of the estimate has been sent.
 */
export interface LedgerState {
  /** Every approval in order; the last one's budget is in force. */
  approvals: ApprovalRecord[];
  /** What finished calls cost (BRL), from the `usage` Maritaca reported. */
  actualCost: number;
  /**
   * Worst case of calls Maritaca may have billed without saying so (outcome unknown, or an
   * answer without `usage`). Absent in ledgers of earlier versions.
   */
  unconfirmedCost?: number;
  /** The worst case held for each call in flight, by request index, and their sum. */
  reservations: Record<string, number>;
  reserved: number;
  /** Estimated and worst-case cost of the requests started and not sent back by a 429. */
  dispatchedCost: number;
  dispatchedMaxCost: number;
  /** The batch's estimate and worst case, once known. */
  estimatedCost: number;
  estimatedMaxCost: number;
}

/** A ledger with nothing approved, spent or held. */
export function emptyLedger(): LedgerState {
  return {
    approvals: [],
    actualCost: 0,
    reservations: {},
    reserved: 0,
    dispatchedCost: 0,
    dispatchedMaxCost: 0,
    estimatedCost: 0,
    estimatedMaxCost: 0,
  };
}

/**
 * The one place a batch counts money. Every call reserves its worst case before it starts and
 * gives the reservation back when it settles, so spent plus reserved never passes the approved
 * budget as long as each call costs at most what it reserved.
 */
export class BudgetLedger {
  constructor(readonly state: LedgerState) {}

  /** The budget in force, or null before any approval. */
  get approved(): number | null {
    return this.state.approvals.at(-1)?.budget ?? null;
  }

  /** Held for calls in flight. */
  get reserved(): number {
    return this.state.reserved;
  }

  /** Spent: what finished calls cost plus the worst case of calls whose bill is unknown. */
  get spent(): number {
    return addCosts(this.state.actualCost, this.unconfirmed);
  }

  /** The part of {@link spent} that is a worst case, not a bill. */
  get unconfirmed(): number {
    return this.state.unconfirmedCost ?? 0;
  }

  /** Estimated cost of the requests not started yet. */
  get restCost(): number {
    return Math.max(0, addCosts(this.state.estimatedCost, -this.state.dispatchedCost));
  }

  /** Worst-case cost of the requests not started yet. */
  get restMaxCost(): number {
    return Math.max(0, addCosts(this.state.estimatedMaxCost, -this.state.dispatchedMaxCost));
  }

  /** What a budget must be for the batch to finish whatever happens: spent, held and the rest's worst case. */
  get neededToFinish(): number {
    return addCosts(addCosts(this.spent, this.reserved), this.restMaxCost);
  }

  /** Records the estimate the rest is measured against. */
  setEstimate(totalCost: number, maxCost: number): void {
    this.state.estimatedCost = totalCost;
    this.state.estimatedMaxCost = maxCost;
  }

  /** Adds an approval; its budget is in force from now on. */
  approve(record: ApprovalRecord): void {
    this.state.approvals.push(record);
  }

  /** Whether a call whose worst case is `maxCost` may start without passing the budget. */
  fits(maxCost: number): boolean {
    return addCosts(addCosts(this.spent, this.reserved), maxCost) <= (this.approved ?? 0) + COST_EPSILON;
  }

  /**
   * Holds a starting call's worst case (`reservation`, by default the estimate's `maxCost`), and
   * counts the request's estimate (`cost`, `maxCost`) as sent.
   */
  reserve(index: number, cost: number, maxCost: number, reservation = maxCost): void {
    this.state.reservations[index] = reservation;
    this.state.reserved = addCosts(this.state.reserved, reservation);
    this.state.dispatchedCost = addCosts(this.state.dispatchedCost, cost);
    this.state.dispatchedMaxCost = addCosts(this.state.dispatchedMaxCost, maxCost);
  }

  /** A call answered: its real cost is spent and its reservation given back. */
  settle(index: number, realCost: number): void {
    this.state.actualCost = addCosts(this.state.actualCost, realCost);
    this.release(index);
  }

  /**
   * A call may have been billed but its bill is unknown (it timed out, was abandoned, or
   * answered without `usage`): its whole reservation counts as spent.
   */
  spendReservation(index: number): void {
    this.state.unconfirmedCost = addCosts(this.unconfirmed, this.state.reservations[index] ?? 0);
    this.release(index);
  }

  /** What the call at `index` holds now. */
  reservationOf(index: number): number {
    return this.state.reservations[index] ?? 0;
  }

  /** A call failed for good: nothing was billed, its reservation is given back. */
  release(index: number): void {
    this.state.reserved = addCosts(this.state.reserved, -(this.state.reservations[index] ?? 0));
    delete this.state.reservations[index];
  }

  /** A call goes back to the queue (a 429): its reservation is given back and it counts as not sent. */
  requeue(index: number, cost: number, maxCost: number): void {
    this.release(index);
    this.state.dispatchedCost = addCosts(this.state.dispatchedCost, -cost);
    this.state.dispatchedMaxCost = addCosts(this.state.dispatchedMaxCost, -maxCost);
  }

  /** The budget figures the `progress` query shows, or null before any approval. */
  budgetState(): BudgetState | null {
    const approved = this.approved;
    if (approved === null) return null;
    const reserved = this.reserved;
    return {
      approved,
      spent: this.spent,
      reserved,
      remaining: addCosts(approved, -addCosts(this.spent, reserved)),
      ...(this.unconfirmed > 0 ? { unconfirmed: this.unconfirmed } : {}),
      restEstimate: this.restCost,
      restMaxCost: this.restMaxCost,
    };
  }
}
