/** Errors of the sandbox's admin surface, with stable codes the admin HTTP API maps to statuses. */
export type SandboxErrorCode =
  | 'SANDBOX_CLIENT_EXISTS'
  | 'SANDBOX_CLIENT_NOT_FOUND'
  /** An uninstall's DELETE to the app's callback got no answer (refused, timed out). */
  | 'SANDBOX_CALLBACK_FAILED';

export class SandboxError extends Error {
  override readonly name = 'SandboxError';

  readonly code: SandboxErrorCode;

  constructor(code: SandboxErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

/** The RFC 6749 §5.2 error codes the token endpoint answers with. */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unsupported_grant_type';

/**
 * A refusal by the token endpoint: carried up from the grant logic to the route, which renders it
 * as `{"error": code, "error_description": description}` with `status`.
 */
export class OAuthError extends Error {
  override readonly name = 'OAuthError';

  readonly code: OAuthErrorCode;
  readonly description: string;
  readonly status: number;

  constructor(code: OAuthErrorCode, description: string, status: number = code === 'invalid_client' ? 401 : 400) {
    super(`${code}: ${description}`);
    this.code = code;
    this.description = description;
    this.status = status;
  }
}

export const invalidRequest = (description: string, status = 400): OAuthError =>
  new OAuthError('invalid_request', description, status);

/** Pipedrive's wording for every client-authentication failure. */
export const invalidClient = (): OAuthError => new OAuthError('invalid_client', 'Invalid client');

export const invalidGrant = (description: string): OAuthError =>
  new OAuthError('invalid_grant', description);
