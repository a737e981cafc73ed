import { log, workflowInfo } from '@temporalio/workflow';
import {
  HISTORY_SIZE_LIMIT_BYTES,
  type BatchOptions,
  type BatchRequest,
  type BatchState,
  type PageItem,
  type RequestSource,
  type ResultsRef,
} from '../shared';
import type { BatchActivities } from './activities';

/** Requests resolved and priced per `loadPage` call; the workflow holds at most two pages. */
export const PAGE_SIZE = 500;
/** Events a run may still add after deciding to continue as new (draining, handlers, the end). */
const HISTORY_MARGIN_EVENTS = 200;

/**
 * The requests of a run, a page at a time: loads the next page before the buffer runs dry,
 * remembers where the oldest unfinished page starts (the cursor a continued run resumes from),
 * and compacts a page's outcomes in the store once all of them are settled.
 */
export class PageQueue {
  /** Loaded, priced requests not started yet. */
  readonly buffer: PageItem[] = [];
  /** Pages the buffer came from, oldest first (for the resume cursor). */
  private readonly pages: { startIndex: number; byteOffset: number; end: number }[] = [];
  private nextPage: { startIndex: number; byteOffset: number };
  /** A `loadPage` is in flight. */
  loading = false;
  /** `compactOutcomes` activities in flight. */
  compacting = 0;
  /** Pages settled while outcomes were still kept inline: compacted if the batch moves them to the store. */
  readonly settledInline: { start: number; end: number }[] = [];

  constructor(
    private readonly state: BatchState,
    private readonly activities: Pick<BatchActivities, 'loadPage' | 'compactOutcomes'>,
    private readonly input: { requests?: BatchRequest[]; source?: RequestSource; options: BatchOptions },
    private readonly total: number,
  ) {
    this.nextPage = { startIndex: state.view.pageStartIndex, byteOffset: state.view.byteOffset };
  }

  /** Requests remain that were never loaded. */
  moreToLoad(): boolean {
    return this.nextPage.startIndex < this.total;
  }

  /** Starts loading the next page when the buffer runs low (at most one load at a time). */
  refill(): void {
    if (!this.loading && this.buffer.length < PAGE_SIZE / 2 && this.moreToLoad()) void this.loadNext();
  }

  private async loadNext(): Promise<void> {
    this.loading = true;
    try {
      const page = this.nextPage;
      const { requests, source, options } = this.input;
      const output = await this.activities.loadPage({
        ...(requests
          ? { requests: requests.slice(page.startIndex, page.startIndex + PAGE_SIZE) }
          : { source: source!, byteOffset: page.byteOffset }),
        startIndex: page.startIndex,
        limit: PAGE_SIZE,
        options,
      });
      const end = page.startIndex + output.items.length;
      this.pages.push({ ...page, end });
      this.state.openPage(page.startIndex, end);
      // A resumed run re-reads the page it stopped in; requests started before are skipped.
      this.buffer.push(...output.items.filter((item) => item.index >= this.state.view.nextIndex));
      this.nextPage = { startIndex: end, byteOffset: output.nextByteOffset ?? 0 };
    } finally {
      this.loading = false;
      this.state.bump();
    }
  }

  /** The next request at `now`: a retry whose wait is over first, else the buffer's head (undefined when neither has one). */
  peek(now: number): PageItem | undefined {
    // Pages the buffer has moved past no longer hold the resume cursor.
    while (
      this.pages.length > 0 &&
      (this.buffer.length === 0 || this.buffer[0]!.index >= this.pages[0]!.end)
    ) {
      this.pages.shift();
    }
    return this.state.nextRequest(this.buffer, now);
  }

  /** Work remains for this batch: buffered, sent back by a 429, or not loaded yet. */
  workLeft(): boolean {
    return this.buffer.length > 0 || this.state.view.retryQueue.length > 0 || this.moreToLoad();
  }

  /**
   * Whether this run should hand over to a new one before its history grows past the bounds:
   * `historyEventLimit` events, and (when `boundBytes`) {@link HISTORY_SIZE_LIMIT_BYTES}.
   */
  shouldContinueAsNew(historyEventLimit: number, boundBytes: boolean): boolean {
    const info = workflowInfo();
    return (
      this.workLeft() &&
      (info.continueAsNewSuggested ||
        info.historyLength + 3 * this.state.view.inFlight + HISTORY_MARGIN_EVENTS >= historyEventLimit ||
        (boundBytes && info.historySize >= HISTORY_SIZE_LIMIT_BYTES))
    );
  }

  /** Where the next run resumes: the oldest page still in use, else the next to load. */
  cursor(): { startIndex: number; byteOffset: number } {
    return this.pages[0] ?? this.nextPage;
  }

  /** Folds a finished page's outcomes into one object in the store (a failure only costs objects). */
  compact(results: ResultsRef, page: { start: number; end: number }): void {
    this.compacting += 1;
    this.activities
      .compactOutcomes({ results, startIndex: page.start, endIndex: page.end })
      .catch((err: unknown) =>
        // Uncompacted outcomes stay readable one by one; only the object count suffers.
        log.warn('Could not compact a page of outcomes', {
          start: page.start,
          error: (err as Error).message,
        }),
      )
      .finally(() => {
        this.compacting -= 1;
        this.state.bump();
      });
  }
}
