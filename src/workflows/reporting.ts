import {
  CancellationScope,
  condition,
  log,
  setCurrentDetails,
  upsertSearchAttributes,
} from '@temporalio/workflow';
import {
  ACTUAL_COST_KEY,
  BATCH_STATUS_KEY,
  ESTIMATED_COST_KEY,
  REQUESTS_KEY,
  renderCurrentDetails,
  type BatchOptions,
  type BatchProgress,
  type BatchState,
  type BatchStatus,
  type WaitingFor,
} from '../shared';
import type { BatchActivities } from './activities';

/**
 * What people and other systems see of a batch: the UI's current details, the typed search
 * attributes, and the progress webhook. It reads the state; it never changes what the batch does.
 */
export class Reporter {
  /** Only upsert search attributes the namespace has: unknown ones would fail every workflow task. */
  private searchAttributes = false;
  private detailsAt = 0;
  private progressPostedAt = 0;
  private posting = false;
  private readonly progressEveryMs: number;

  constructor(
    private readonly state: BatchState,
    private readonly total: number,
    private readonly activities: Pick<BatchActivities, 'postProgress' | 'searchAttributesReady'>,
    private readonly progressUpdates: BatchOptions['onProgress'],
  ) {
    this.progressEveryMs = (progressUpdates?.everySeconds ?? 30) * 1000;
  }

  /** Answer of the `progress` query. */
  progress(): BatchProgress {
    return this.state.progress(this.total);
  }

  /** Finds out whether the namespace has the search attributes, and sets the first ones. */
  async start(): Promise<void> {
    this.searchAttributes = await this.activities.searchAttributesReady().catch(() => false);
    if (this.searchAttributes) {
      upsertSearchAttributes([
        { key: BATCH_STATUS_KEY, value: this.state.view.status },
        { key: REQUESTS_KEY, value: this.total },
      ]);
    }
    this.refreshDetails(true);
  }

  /** Heard on every state change: details at most once a second, progress at its own pace. */
  onChange(): void {
    this.refreshDetails(false);
    this.maybePostProgress();
  }

  /** Moves the batch to a status; a new status is upserted and shown at once. */
  setStatus(status: BatchStatus, waitingFor: WaitingFor = null): void {
    const { changed, statusChanged } = this.state.setStatus(status, waitingFor);
    if (!changed) return;
    if (statusChanged && this.searchAttributes) {
      const s = this.state.view;
      upsertSearchAttributes([
        { key: BATCH_STATUS_KEY, value: s.status },
        { key: ACTUAL_COST_KEY, value: s.actualCost },
        ...(s.estimate ? [{ key: ESTIMATED_COST_KEY, value: s.estimate.totalCost }] : []),
      ]);
    }
    this.refreshDetails(true);
  }

  /** The UI reads details on demand; re-rendering them once a second is plenty. */
  refreshDetails(force: boolean): void {
    const now = Date.now();
    if (!force && now - this.detailsAt < 1000) return;
    this.detailsAt = now;
    setCurrentDetails(renderCurrentDetails(this.progress(), this.requestsPerMinute()));
  }

  /**
   * The batch has ended as `status`: a closed batch is read through a replaying query, so its
   * details must say how it ended, the last error included. Only the details change here: a
   * status upsert would be a command histories of earlier runs lack.
   */
  renderFinal(status: BatchStatus, lastError: string | null): void {
    this.state.markEnded(status);
    setCurrentDetails(renderCurrentDetails(this.progress(), this.requestsPerMinute(), lastError));
  }

  private requestsPerMinute(): number | null {
    const { runningSince, succeeded, failed } = this.state.view;
    if (runningSince === null) return null;
    const minutes = (Date.now() - runningSince) / 60_000;
    return minutes > 0 ? (succeeded + failed) / minutes : 0;
  }

  private postNow(): void {
    this.posting = true;
    this.progressPostedAt = Date.now();
    const url = this.progressUpdates?.url;
    this.activities
      .postProgress({ ...(url ? { url } : {}), progress: this.progress() })
      .catch((err: unknown) => log.warn('Progress update failed', { error: (err as Error).message }))
      .finally(() => {
        this.posting = false;
      });
  }

  private maybePostProgress(): void {
    if (!this.progressUpdates || this.posting) return;
    if (Date.now() - this.progressPostedAt >= this.progressEveryMs) this.postNow();
  }

  /** The last word goes out whatever the throttle says, so watchers see how the batch ended. */
  async postFinal(): Promise<void> {
    if (!this.progressUpdates) return;
    await CancellationScope.nonCancellable(async () => {
      await condition(() => !this.posting);
      this.postNow();
      await condition(() => !this.posting);
    });
  }
}
