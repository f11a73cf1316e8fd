// apiserver failures as typed errors: callers branch on `reason` (metav1.StatusReason), never on text.
import { z } from 'zod';

export type StatusReason =
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Invalid'
  | 'Forbidden'
  | 'Unauthorized'
  | 'Gone'
  | 'Expired'
  | 'TooManyRequests'
  | 'Timeout'
  | 'ServerTimeout'
  | 'InternalError'
  | 'BadRequest'
  | 'NetworkError'
  | 'Unknown';

export const statusOf = { network: 0 } as const;

const statusBody = z.object({
  kind: z.literal('Status'),
  reason: z.string().optional(),
  message: z.string().optional(),
  code: z.number().optional(),
});

const reasonByHTTPStatus: Record<number, StatusReason> = {
  400: 'BadRequest',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  410: 'Gone',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  504: 'Timeout',
};

export class KubeAPIError extends Error {
  readonly code = 'KUBE_API';
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly reason: StatusReason;

  constructor(method: string, path: string, status: number, reason: StatusReason, message: string, options?: ErrorOptions) {
    super(`${method} ${path}: ${reason}${status ? ` (${status})` : ''}: ${message}`, options);
    this.name = 'KubeAPIError';
    this.method = method;
    this.path = path;
    this.status = status;
    this.reason = reason;
  }

  static fromResponse(method: string, path: string, status: number, body: string): KubeAPIError {
    let parsed: z.output<typeof statusBody> | undefined;
    try {
      const result = statusBody.safeParse(JSON.parse(body));
      if (result.success) parsed = result.data;
    } catch {
      parsed = undefined;
    }
    const reason = (parsed?.reason as StatusReason | undefined) ?? reasonByHTTPStatus[status] ?? 'Unknown';
    return new KubeAPIError(method, path, status, reason, parsed?.message ?? `HTTP ${status}`);
  }
}

export const isNotFound = (error: unknown) => error instanceof KubeAPIError && error.reason === 'NotFound';
export const isConflict = (error: unknown) => error instanceof KubeAPIError && error.reason === 'Conflict';
export const isAlreadyExists = (error: unknown) => error instanceof KubeAPIError && error.reason === 'AlreadyExists';
/** Worth retrying as it is: the apiserver was unreachable, overloaded (429) or failing (5xx). */
export const isTransient = (error: unknown) =>
  error instanceof KubeAPIError && (error.status === statusOf.network || error.status === 429 || error.status >= 500);
export const isGone = (error: unknown) =>
  error instanceof KubeAPIError && (error.reason === 'Gone' || error.reason === 'Expired' || error.status === 410);
