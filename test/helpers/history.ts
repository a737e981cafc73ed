import type { Client } from '@temporalio/client';

/**
 * A workflow's whole history as searchable text: the JSON of every event with each payload's
 * base64 `data` decoded next to it, so a search sees what Temporal actually stored.
 */
export async function historyText(client: Client, workflowId: string): Promise<string> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const json = JSON.stringify(history);
  const decoded: string[] = [];
  for (const match of json.matchAll(/"data":"([A-Za-z0-9+/=]+)"/g)) {
    decoded.push(Buffer.from(match[1]!, 'base64').toString('utf8'));
  }
  return `${json}\n${decoded.join('\n')}`;
}
