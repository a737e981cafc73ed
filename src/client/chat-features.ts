import { schemaProblem } from '../activities/structured-output';
import type { BatchOptions, BatchRequest, InputIssue, ResponseFormat, Tool, ToolChoice } from '../shared';

/** The chat-feature fields a request or the batch options carry. */
interface Features {
  tools?: Tool[] | undefined;
  toolChoice?: ToolChoice | undefined;
  responseFormat?: ResponseFormat | undefined;
}

/**
 * What the schema cannot see in a request's chat features, each with its path in the request:
 * JSON schemas that do not compile (tool parameters, response formats), a `toolChoice` naming a
 * function the request (or the batch's default tools) does not define, a `toolChoice` with no
 * tools at all, and a `tool` message answering a call no earlier assistant message made.
 */
export function chatFeatureIssues(request: BatchRequest, defaults: BatchOptions = {}): InputIssue[] {
  const issues = featureIssues(request, '');
  const tools = request.tools ?? defaults.tools;
  const choice = request.toolChoice ?? defaults.toolChoice;
  if (
    request.toolChoice !== undefined ||
    (request.tools !== undefined && defaults.toolChoice !== undefined)
  ) {
    issues.push(...choiceIssues(choice, tools, request.toolChoice !== undefined ? 'toolChoice' : 'tools'));
  }
  const calls = new Set<string>();
  request.messages.forEach((message, i) => {
    for (const call of message.tool_calls ?? []) calls.add(call.id);
    if (message.role === 'tool' && message.tool_call_id !== undefined && !calls.has(message.tool_call_id)) {
      issues.push({
        path: `messages[${i}].tool_call_id`,
        message: `answers "${message.tool_call_id}", which no earlier assistant message called`,
      });
    }
  });
  return issues;
}

/** The same checks for the batch options' defaults, with paths under `options.`. */
export function optionFeatureIssues(options: BatchOptions): InputIssue[] {
  const issues = featureIssues(options, 'options.');
  if (options.toolChoice !== undefined) {
    issues.push(
      ...choiceIssues(options.toolChoice, options.tools, 'toolChoice').map((issue) => ({
        ...issue,
        path: `options.${issue.path}`,
      })),
    );
  }
  return issues;
}

function featureIssues(features: Features, prefix: string): InputIssue[] {
  const issues: InputIssue[] = [];
  const names = new Set<string>();
  (features.tools ?? []).forEach((tool, i) => {
    const name = tool.function.name;
    if (names.has(name)) {
      issues.push({ path: `${prefix}tools[${i}].function.name`, message: `"${name}" is defined twice` });
    }
    names.add(name);
    const parameters = tool.function.parameters;
    const problem = parameters && schemaProblem(parameters);
    if (problem) issues.push({ path: `${prefix}tools[${i}].function.parameters`, message: problem });
  });
  const format = features.responseFormat;
  const schema =
    format?.type === 'json_schema'
      ? format.json_schema.schema
      : format?.type === 'json_object'
        ? format.schema
        : undefined;
  const problem = schema && schemaProblem(schema);
  if (problem) {
    const where =
      format?.type === 'json_schema' ? 'responseFormat.json_schema.schema' : 'responseFormat.schema';
    issues.push({ path: `${prefix}${where}`, message: problem });
  }
  return issues;
}

function choiceIssues(choice: ToolChoice | undefined, tools: Tool[] | undefined, path: string): InputIssue[] {
  if (choice === undefined || choice === 'none' || choice === 'auto') return [];
  if (!tools || tools.length === 0) {
    return [{ path, message: 'toolChoice asks for a tool call, but the request has no tools' }];
  }
  if (typeof choice === 'object' && !tools.some((t) => t.function.name === choice.function.name)) {
    return [
      {
        path,
        message: `toolChoice names "${choice.function.name}", which is not among the tools (${tools
          .map((t) => t.function.name)
          .join(', ')})`,
      },
    ];
  }
  return [];
}
