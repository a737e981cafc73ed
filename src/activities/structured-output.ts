import Ajv, { type ValidateFunction } from 'ajv';
import { structuredTarget, type CallMaritacaInput, type ParsedToolCall } from '../shared';

// One validator for the process: compiled schemas are cached by their JSON text.
const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new Map<string, ValidateFunction>();

function validatorFor(schema: Record<string, unknown>): ValidateFunction {
  const key = JSON.stringify(schema);
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(key, validate);
  }
  return validate;
}

/**
 * Why `schema` is not a usable JSON schema, or null when it is: the client refuses such a
 * request before anything starts, naming the field.
 */
export function schemaProblem(schema: Record<string, unknown>): string | null {
  try {
    validatorFor(schema);
    return null;
  } catch (err) {
    return `is not a valid JSON schema: ${err instanceof Error ? err.message : String(err)}`;
  }
}

/** The parts of an answer that structured output is read from. */
export interface AnswerMessage {
  content: string | null;
  tool_calls?: { id: string; type: string; function?: { name: string; arguments: string } }[] | undefined;
}

/** What an answer's structure gave: parsed tool calls, the structured value, or why it does not match. */
export interface StructuredReading {
  toolCalls?: ParsedToolCall[];
  parsed?: unknown;
  /** Set when the request asked for structured output and the answer does not match it. */
  problem?: string;
}

function parseJson(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}

/**
 * Reads an answer against what the request asked for: tool calls with their arguments parsed
 * (kept as text when they are not JSON), and for structured output (a JSON response format or a
 * forced function) the value, checked against its schema. An answer that does not match says
 * why in `problem`, in the validator's words, so the batch can ask again.
 */
export function readStructured(call: CallMaritacaInput, message: AnswerMessage): StructuredReading {
  const reading: StructuredReading = {};
  const calls = (message.tool_calls ?? []).filter((c) => c.type === 'function' && c.function);
  if (calls.length > 0) {
    reading.toolCalls = calls.map((c) => {
      const args = parseJson(c.function!.arguments);
      return { id: c.id, name: c.function!.name, arguments: args.ok ? args.value : c.function!.arguments };
    });
  }
  const target = structuredTarget(call);
  if (!target) return reading;
  let text: string;
  if (target.kind === 'tool_call') {
    const forced = calls.find((c) => c.function!.name === target.name);
    if (!forced) {
      reading.problem = `the answer did not call the function "${target.name}" the request forces`;
      return reading;
    }
    text = forced.function!.arguments;
  } else {
    if (typeof message.content !== 'string' || message.content.trim() === '') {
      reading.problem = 'the answer has no JSON content';
      return reading;
    }
    text = message.content;
  }
  const value = parseJson(text);
  if (!value.ok) {
    reading.problem = `the answer is not JSON (${value.message})`;
    return reading;
  }
  if (
    target.kind === 'content' &&
    !target.schema &&
    (typeof value.value !== 'object' || value.value === null)
  ) {
    reading.problem = 'the answer is JSON but not an object';
    return reading;
  }
  if (target.schema) {
    const validate = validatorFor(target.schema);
    if (!validate(value.value)) {
      reading.problem = `the answer does not match the schema: ${ajv.errorsText(validate.errors, { dataVar: 'answer' })}`;
      return reading;
    }
  }
  reading.parsed = value.value;
  return reading;
}
